"""The alert lifecycle (fire, refresh, clear, snooze) and the lag arithmetic behind it, pure."""
