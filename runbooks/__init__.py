"""The domain: run and step models, the transition table, decide(), approval and health rules,
and the runbook definitions. Pure: stdlib and pydantic only, no clock, no I/O."""
