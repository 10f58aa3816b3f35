"""Alerts and lag: the conditions, the evaluator, the lag poll and the monitors' use cases."""
