"""The Kafka adapter: cluster health snapshots and leader elections over the Kafka admin API."""

from bot.kafka.admin import KafkaAdminAdapter
from bot.kafka.errors import KafkaUnavailable

__all__ = ["KafkaAdminAdapter", "KafkaUnavailable"]
