"""Checkpoint files: the one safe reader, segattn's format, and the rule for configs stored in files.

Below models, convert, engine and the API: nothing here imports them.
"""
from segattn.checkpoints.errors import CheckpointError
from segattn.checkpoints.format import (
    BEST_THEN_LAST, LAST, checked_segattn, is_segattn_checkpoint, model_weights, read_segattn_checkpoint,
    resolve_checkpoint, state_dict_of,
)
from segattn.checkpoints.reader import read_file
from segattn.checkpoints.stored_config import check_stored_config, stored_target

__all__ = ["BEST_THEN_LAST", "LAST", "CheckpointError", "check_stored_config", "checked_segattn",
           "is_segattn_checkpoint", "model_weights", "read_file", "read_segattn_checkpoint", "resolve_checkpoint",
           "state_dict_of", "stored_target"]
