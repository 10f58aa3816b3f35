"""Use cases: the command grammar, approvals and aborts, event-to-alert logic, view models.

Transport-neutral: Slack and the console both call in here. No I/O library is imported; the
world is reached through the Protocol ports defined next to the code that needs them.
"""
