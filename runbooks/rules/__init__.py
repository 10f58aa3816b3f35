"""What is safe for a cluster: health and restart rules, rolls, versions, and the judge of config values."""
