"""What happens to a run after it is created: people's actions on it, the harm watch, its text."""
