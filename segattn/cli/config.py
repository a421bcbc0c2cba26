"""The config folder the CLIs compose from (found by :mod:`segattn.configs`), and composing a training config."""
from segattn.configs import CONFIG_DIR

__all__ = ["CONFIG_DIR", "compose_train"]


def compose_train(overrides: list[str]):
    """The training config ``train.py`` would build from ``overrides`` (for scripts that train or measure)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))
