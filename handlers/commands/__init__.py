"""The ``/kafka`` verbs: the grammar, the command models, and the service that answers them."""
