"""The config folder the CLIs compose from (found by :mod:`segattn.configs`)."""
from segattn.configs import CONFIG_DIR

__all__ = ["CONFIG_DIR"]
