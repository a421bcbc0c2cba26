"""The one exception of checkpoint reading: a file that is not a usable checkpoint (the message says why)."""


class CheckpointError(ValueError):
    """Expected a readable checkpoint (of the kind the caller needs); the message names what was found instead."""
