"""The run engine: the records (runs, steps, approvals), the events, and the one pure ``decide()``
over its transition table."""
