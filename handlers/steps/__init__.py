"""Step executors: the I/O half of each step kind, over the ports, registered by kind."""
