"""The bot's own HTTP server for probes and ``/metrics``, and the metrics it renders."""
