"""Checkpoint converter: mmseg model-zoo files and the official CCNet / DANet releases -> segattn checkpoints."""
from segattn.convert.build import convert_checkpoint, read_any, read_source, save_checkpoint
from segattn.convert.errors import ConversionError
from segattn.convert.formats import FORMATS

__all__ = ["FORMATS", "ConversionError", "convert_checkpoint", "read_any", "read_source", "save_checkpoint"]
