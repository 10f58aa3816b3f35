"""Settings and the clusters file: read, checked, and turned into the use cases' clusters."""
