"""Where the Hydra configs live: ``$SEGATTN_CONFIG_DIR``, else the ``conf/`` shipped in the installed
package (``segattn/conf``, from a wheel), else the checkout's top-level ``conf/`` (source tree, editable install)."""
import os
from pathlib import Path

PACKAGED = Path(__file__).resolve().parents[1] / "conf"
CHECKOUT = Path(__file__).resolve().parents[2] / "conf"


def config_dir() -> Path:
    """The folder holding ``train.yaml`` and ``eval.yaml``, in the order above."""
    if os.environ.get("SEGATTN_CONFIG_DIR"):
        return Path(os.environ["SEGATTN_CONFIG_DIR"])
    return PACKAGED if (PACKAGED / "train.yaml").is_file() else CHECKOUT


CONFIG_DIR = config_dir()


def compose_train(overrides: list[str]):
    """The training config ``train.py`` would build from ``overrides`` (for scripts that train or measure)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))
