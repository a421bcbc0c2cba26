"""The one exception of the converter: a file it cannot turn into a segattn checkpoint (the message says why)."""
from segattn.checkpoints import CheckpointError


class ConversionError(CheckpointError):
    """Expected a readable checkpoint of a known layout; the message names what was found instead."""
