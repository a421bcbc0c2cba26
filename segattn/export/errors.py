"""The one exception of export: a model, option or file that cannot be exported (the message says why)."""


class ExportError(ValueError):
    """A model or setting that cannot be exported, or an exported file that cannot be read back."""
