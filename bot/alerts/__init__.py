"""Alerts on the bot side: Redis state, the console channel, and the wiring of the monitors."""
