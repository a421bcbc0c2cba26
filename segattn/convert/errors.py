"""The one exception of the converter: a file it cannot turn into a segattn checkpoint (the message says why)."""


class ConversionError(ValueError):
    """Expected a readable checkpoint of a known layout; the message names what was found instead."""
