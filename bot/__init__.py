"""Adapters and wiring: Slack, console, Kubernetes, Kafka, Redis, the worker, the sandbox."""
