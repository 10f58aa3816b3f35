"""Errors of the Kafka adapter."""

from __future__ import annotations


class KafkaUnavailable(Exception):
    """The cluster could not answer an admin request in time (brokers down, unreachable, refused).

    The message names the bootstrap servers and the call that failed; it never carries credentials
    (SASL passwords live in the client config, which is never formatted into a message).
    """
