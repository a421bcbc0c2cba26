"""Ship the top-level ``conf/`` inside the wheel as ``segattn/conf`` (metadata lives in pyproject.toml)."""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONF = Path(__file__).resolve().parent / "conf"


class BuildPyWithConfigs(build_py):
    """``build_py`` that also copies every ``conf/**/*.yaml`` to ``<build>/segattn/conf``.

    An editable install reads the checkout's ``conf/`` directly (``segattn.configs``), so nothing is copied there.
    """

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        sources = sorted(CONF.rglob("*.yaml"))
        if not (CONF / "train.yaml").is_file():  # e.g. an sdist made without MANIFEST.in
            raise FileNotFoundError(f"expected the Hydra configs in {CONF} (conf/train.yaml), found {len(sources)} files")
        for source in sources:
            target = Path(self.build_lib) / "segattn" / "conf" / source.relative_to(CONF)
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildPyWithConfigs})
