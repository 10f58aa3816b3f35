"""The simulated Strimzi cluster operator: Kafka / KafkaNodePool / KafkaTopic onto real brokers.

Modules, in the order a reconciliation uses them: ``loop`` (watch + timer, one worker per
cluster: ``Operator``), ``reconciler`` (one reconciliation, ``OperatorSettings``), ``scaling`` +
``nodepools`` (node ids, the scale-down check), ``upgrade`` + ``versions`` (version change and
metadata levels), ``roller`` + ``availability`` (one pod at a time, Strimzi's safety checks),
``brokerconfig`` (restart or dynamic update), ``pods`` + ``cluster`` (pod objects backed by JVMs,
podsets), ``events``, ``status`` + ``status_writer`` (the status documents, and writing the Kafka's
and its pools'), ``topics`` (the Topic Operator), ``kafka_admin`` (its Admin client) and ``names``
(Strimzi's labels and annotations).

Nothing is imported here: the CLI reads ``names`` and ``versions`` without paying for kafka-python.
"""
