"""Where the Hydra configs live: ``$SEGATTN_CONFIG_DIR``, else the ``conf/`` shipped in the installed
package (``segattn/conf``, from a wheel), else the checkout's top-level ``conf/`` (source tree, editable install)."""
import os
from pathlib import Path

PACKAGED = Path(__file__).resolve().parent / "conf"
CHECKOUT = Path(__file__).resolve().parents[1] / "conf"


def config_dir() -> Path:
    """The folder holding ``train.yaml`` and ``eval.yaml``, in the order above."""
    if os.environ.get("SEGATTN_CONFIG_DIR"):
        return Path(os.environ["SEGATTN_CONFIG_DIR"])
    return PACKAGED if (PACKAGED / "train.yaml").is_file() else CHECKOUT


CONFIG_DIR = config_dir()
