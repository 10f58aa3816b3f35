"""Alerts on the bot side: the console channel and the wiring of the monitors (their Redis state is
``bot.store.alert_state``)."""
