class SandboxError(Exception):
    """A sandbox operation could not be done; the message says why and what to do about it."""
