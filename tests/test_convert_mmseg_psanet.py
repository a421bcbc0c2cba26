"""PSANet has no tiny mmseg fixture: the head's layout is checked against mmseg PSAHead's key names and shapes (zoo
R50-d8 widths, written out from mmseg's constructor), and a zoo-format file with those keys converts and runs."""
import torch

import segattn
from segattn.checkpoints import read_file
from segattn.convert import convert_checkpoint
from segattn.convert.mapping import rename
from segattn.convert.mmseg import _head_rules
from segattn.models.heads.psanet import PSAHead


def zoo_psa_keys(in_channels=2048, channels=512, mask=97 * 97, classes=19):
    """mmseg 1.2.2 PSAHead (bi-direction) decode-head tensors: name -> shape (BN buffers listed once per BN)."""
    def conv_module(name, cin, cout, k=1):
        bn = {f"{name}.bn.{p}": (cout,) for p in ("weight", "bias", "running_mean", "running_var")}
        return {f"{name}.conv.weight": (cout, cin, k, k), **bn, f"{name}.bn.num_batches_tracked": ()}
    keys = {}
    for suffix in ("", "_p"):
        keys.update(conv_module(f"decode_head.reduce{suffix}", in_channels, channels))
        keys.update(conv_module(f"decode_head.attention{suffix}.0", channels, channels))
        keys[f"decode_head.attention{suffix}.1.weight"] = (mask, channels, 1, 1)
    keys.update(conv_module("decode_head.proj", 2 * channels, in_channels))
    keys.update(conv_module("decode_head.bottleneck", 2 * in_channels, channels, 3))
    keys.update({"decode_head.conv_seg.weight": (classes, channels, 1, 1), "decode_head.conv_seg.bias": (classes,)})
    return keys


def test_head_layout_matches_the_zoo_key_names_and_shapes():
    zoo = zoo_psa_keys()
    state = {k: torch.empty(s, device="meta") for k, s in zoo.items()}
    rules, head_cfg, _ = _head_rules(state, "PSAHead")
    renamed, unmatched, _ = rename(state, rules)
    assert not unmatched and head_cfg["mask_size"] == [97, 97] and head_cfg["psa_type"] == "bi-direction"
    with torch.device("meta"):
        head = PSAHead(2048, 19, channels=head_cfg["channels"], mask_size=head_cfg["mask_size"])
    ours = {f"head.{k}": tuple(v.shape) for k, v in head.state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in renamed.items()}


def test_a_zoo_format_psanet_file_converts_and_runs(tmp_path):
    """A tiny zoo-format file: the ISANet fixture's backbone and aux head with a PSAHead (mask 9 x 9) in mmseg's names."""
    source = read_file("tests/fixtures/mmseg-tiny-family/isanet_r18-d8_769x769_80k_cityscapes_tiny-00002222.pth")
    torch.manual_seed(0)
    state = {k: v for k, v in source["state_dict"].items() if not k.startswith("decode_head.")}
    for k, shape in zoo_psa_keys(in_channels=64, channels=16, mask=81).items():
        state[k] = torch.rand(shape) + 0.5 if k.endswith(("running_var", "bn.weight")) else torch.randn(shape) * 0.1
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(0)
    path = tmp_path / "psanet_r18-d8_769x769_80k_cityscapes_tiny.pth"
    torch.save({"meta": source["meta"], "state_dict": state}, path)
    ckpt, summary = convert_checkpoint(path)
    assert summary.startswith("mmseg: psanet head") and ckpt["config"]["head"]["mask_size"] == [9, 9]
    model = segattn.load_model(path)
    for key in ("decode_head.attention_p.1.weight", "decode_head.proj.conv.weight"):
        target = "model.head.psa." + key.split(".", 1)[1]
        assert torch.equal(ckpt["state_dict"][target], state[key])
    with torch.no_grad():
        out = model(torch.randn(1, 3, 41, 57))
    assert out.shape == (1, 19, 41, 57) and torch.isfinite(out).all()
