"""The wheel ships conf/ (console scripts work from any folder), and the declared versions are real."""
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "segattn", "conf")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built as ``python -m build`` does: an sdist from a copy of the sources, then the wheel from
    the unpacked sdist (no build isolation: the test venv has setuptools)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    sdist = subprocess.run([sys.executable, "-c", "import setuptools.build_meta as b; print(b.build_sdist('sdist'))"],
                           cwd=src, check=True, capture_output=True, text=True, timeout=300).stdout.split()[-1]
    shutil.unpack_archive(src / "sdist" / sdist, tmp / "unpacked")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp / "dist"), str(next((tmp / "unpacked").iterdir()))], check=True, capture_output=True,
                   timeout=300)
    return next((tmp / "dist").glob("segattn-*.whl"))


def test_the_wheel_holds_every_config_file(wheel):
    configs = {p.relative_to(ROOT / "conf").as_posix(): p.read_bytes() for p in (ROOT / "conf").rglob("*.yaml")}
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name[len("segattn/conf/"):]: archive.read(name) for name in archive.namelist()
                   if name.startswith("segattn/conf/")}
        scripts = archive.read(next(n for n in archive.namelist() if n.endswith("entry_points.txt"))).decode()
    assert shipped == configs and "train.yaml" in shipped and "experiment/ccnet_r101_cityscapes.yaml" in shipped
    assert "segattn-train = segattn.cli.train:main" in scripts and "segattn-eval = segattn.cli.evaluate:main" in scripts
    assert "segattn-predict = segattn.cli.predict:main" in scripts and "segattn-export = segattn.cli.export:main" in scripts


def test_the_installed_wheel_trains_evaluates_predicts_and_exports_from_another_folder(wheel, tiny_cityscapes, tmp_path):
    """``pip install .`` (not -e): the console scripts' entry points, run outside the checkout."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    env.pop("SEGATTN_CONFIG_DIR", None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def console(module: str, *overrides: str) -> str:
        code = f"import segattn, sys; assert segattn.__file__.startswith({str(site)!r}); " \
               f"from segattn.cli.{module} import main; main()"
        proc = subprocess.run([sys.executable, "-c", code, *overrides], cwd=elsewhere, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    run_dir = tmp_path / "run"
    out = console("train", "head=fcn", f"data.root={tiny_cityscapes}", f"hydra.run.dir={run_dir}",
                  "trainer.max_steps=1", "trainer.accelerator=cpu", "trainer.num_sanity_val_steps=0",
                  "trainer.enable_progress_bar=false", "data.train_transform.crop_size=[32,32]", "data.batch_size=2",
                  "data.val_batch_size=1", "head.channels=8", "model.aux_weight=0")
    assert "| mIoU |" in out and (run_dir / "checkpoints" / "last.ckpt").is_file()
    out = console("evaluate", f"ckpt={run_dir}", f"eval.out={tmp_path / 'eval'}", "eval.device=cpu")
    assert (tmp_path / "eval" / "metrics.json").is_file()
    console("predict", f"ckpt={run_dir}", f"images={tiny_cityscapes / 'leftImg8bit' / 'val'}", f"out={tmp_path / 'pred'}",
            "device=cpu")
    assert len(list((tmp_path / "pred").rglob("*_labels.png"))) == 2
    console("export", f"ckpt={run_dir}", "format=torchscript", f"out={tmp_path / 'model.pt'}", "size=[32,32]")
    assert (tmp_path / "model.pt").is_file()


def floors() -> dict[str, str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", d.split(";")[0].strip()).groups() for d in dependencies)


def test_declared_floors_cover_the_apis_the_code_uses():
    declared = floors()
    assert int(declared["albumentations"].split(".")[0]) >= 2  # Compose(seed=...), set_random_seed
    assert tuple(map(int, declared["pytorch-lightning"].split(".")[:2])) >= (2, 2)


def test_the_docker_image_installs_the_tested_versions():
    """The Dockerfile pins torch/torchvision to the versions the suite runs with, at or above the floors."""
    import torch
    import torchvision

    dockerfile = (ROOT / "Dockerfile").read_text()
    pins = dict(re.findall(r"\b(torch|torchvision)==([0-9][0-9.]*)", dockerfile))
    assert pins == {"torch": torch.__version__.split("+")[0], "torchvision": torchvision.__version__.split("+")[0]}
    assert "pip install -e" not in dockerfile and "COPY conf" in dockerfile
    declared = floors()
    for name, version in pins.items():
        assert tuple(map(int, version.split("."))) >= tuple(map(int, declared[name].split(".")))


def test_the_tested_versions_are_within_the_declared_floors():
    pinned = dict(line.split("==") for line in (ROOT / "docker" / "tested-versions.txt").read_text().split("\n")
                  if line and not line.startswith("#"))
    for name, floor in floors().items():
        assert tuple(map(int, pinned[name].split(".")[:2])) >= tuple(map(int, floor.split(".")[:2])), name
    assert "-c docker/tested-versions.txt" in (ROOT / "Dockerfile").read_text()
