"""The sandbox: a local twin of a Strimzi-run Kafka cluster.

Real Kafka brokers (JVMs from Maven Central jars), a Kubernetes API emulator that the unmodified
``kubernetes`` client talks to, and a simulated Strimzi operator between them. It imports nothing
from the bot's own rules (an import-linter contract), so a bug in the bot cannot hide behind the
same bug in its twin.
"""
