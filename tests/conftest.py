"""Shared fixtures: tiny synthetic datasets written to tmp folders in the official layouts."""
from pathlib import Path

import pytest

from segattn.data.synthetic import generate_ade20k, generate_cityscapes


@pytest.fixture
def tiny_cityscapes(tmp_path) -> Path:
    """Fresh, writable Cityscapes-layout root: 3 train + 2 val images of 32x64 (tests may damage it)."""
    return generate_cityscapes(tmp_path / "cityscapes", num_train=3, num_val=2, height=32, width=64, seed=0)


@pytest.fixture(scope="session")
def small_cityscapes(tmp_path_factory) -> Path:
    """Read-only Cityscapes-layout root shared by a session: 6 train + 2 val + 1 test of 64x128."""
    root = tmp_path_factory.mktemp("small") / "cityscapes"
    return generate_cityscapes(root, num_train=6, num_val=2, num_test=1, height=64, width=128, seed=0)


@pytest.fixture(scope="session")
def small_ade20k(tmp_path_factory) -> Path:
    """Read-only ADEChallengeData2016 folder: 4 training + 2 validation images of 48..96 px."""
    return generate_ade20k(tmp_path_factory.mktemp("ade"), num_train=4, num_val=2, min_size=48, max_size=96, seed=0)
