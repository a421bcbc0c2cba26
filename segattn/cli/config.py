"""Where the Hydra configs live: ``$SEGATTN_CONFIG_DIR`` or the repository's ``conf/``."""
import os
from pathlib import Path

CONFIG_DIR = Path(os.environ.get("SEGATTN_CONFIG_DIR", Path(__file__).resolve().parents[2] / "conf"))
