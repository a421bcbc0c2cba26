"""Two training checkpoints hold the same state: weights, BatchNorm buffers and optimizer state, bitwise."""
from pathlib import Path

import torch

from segattn.checkpoints.reader import read_file


def assert_same_training_state(expected_file: Path, found_file: Path) -> None:
    """The checkpoint of a resumed run equals the one of an uninterrupted run of the same length (CPU, bitwise)."""
    a, b = read_file(expected_file), read_file(found_file)
    assert a["global_step"] == b["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), f"{name} differs after resuming"
    (opt_a,), (opt_b,) = a["optimizer_states"], b["optimizer_states"]
    assert opt_a["state"].keys() == opt_b["state"].keys() and opt_a["state"]
    for index, state in opt_a["state"].items():
        assert torch.equal(state["momentum_buffer"], opt_b["state"][index]["momentum_buffer"]), f"momentum {index}"
    assert [g["lr"] for g in opt_a["param_groups"]] == [g["lr"] for g in opt_b["param_groups"]]
    assert a["lr_schedulers"] == b["lr_schedulers"]
