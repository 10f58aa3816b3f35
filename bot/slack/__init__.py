"""The Slack front end: the ``/kafka`` slash command, run cards with approval buttons, and the
``kafka-chatops run`` entry point (Socket Mode or HTTP). It drives the same use cases as the
console (``handlers.commands.service.CommandService``); every decision goes through Redis, so any replica
may take any request."""
