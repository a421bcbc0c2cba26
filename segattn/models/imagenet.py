"""ImageNet weights for ResNetBackbone: ``pretrained=imagenet`` (known release files) or a local file of any layout."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from segattn.checkpoints import read_file, state_dict_of
from segattn.models.resnet_keys import STEM_OF_LAYOUT, detect_layout, to_backbone_keys

# The usual ImageNet file of each (stem, depth); torchvision's are fetched through torchvision.
RELEASES = {
    ("v1c", 18): "https://download.openmmlab.com/pretrain/third_party/resnet18_v1c-b5776b93.pth",
    ("v1c", 50): "https://download.openmmlab.com/pretrain/third_party/resnet50_v1c-2cccc1ad.pth",
    ("v1c", 101): "https://download.openmmlab.com/pretrain/third_party/resnet101_v1c-e67eebb6.pth",
    ("ccnet", 101): "http://sceneparsing.csail.mit.edu/model/pretrained_resnet/resnet101-imagenet.pth",
}


def _release_state(stem: str, depth: int, torchvision_weights) -> Mapping[str, Tensor]:
    """The ImageNet file of ``(stem, depth)`` from the torch hub cache, downloaded there first when online,
    then read by the safe reader (torch.hub's own loader would unpickle it without ``weights_only``)."""
    if stem == "torchvision":
        url = torchvision_weights.url
    elif (stem, depth) in RELEASES:
        url = RELEASES[(stem, depth)]
    else:
        known = ", ".join(f"{s} ResNet-{d}" for s, d in RELEASES)
        raise ValueError(
            f"backbone.pretrained=imagenet: no published ImageNet file for the {stem} stem at depth {depth} "
            f"(known: torchvision stems, {known}); pass backbone.pretrained=/path/to/file.pth"
        )
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if not cached.is_file():
        named_hash = torch.hub.HASH_REGEX.search(cached.name) if stem == "torchvision" else None
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(cached), named_hash.group(1) if named_hash else None)
        except Exception as err:  # offline: urllib / socket errors of many kinds
            raise RuntimeError(
                f"backbone.pretrained=imagenet could not download {url} ({type(err).__name__}: {err}). "
                f"Download that file on a machine with internet and pass backbone.pretrained=/path/to/"
                f"{cached.name}, or place it in {cached.parent}/."
            ) from None
    return read_state(cached)


def read_state(path: Path) -> Mapping[str, Tensor]:
    """Tensors of a ``.pth`` file (read safely): a bare state dict, or one under ``state_dict`` / ``model``;
    ``module.`` stripped."""
    return state_dict_of(read_file(path), path)


def load_pretrained(net: nn.Module, pretrained: str, depth: int, stem: str = "torchvision",
                    torchvision_weights=None) -> None:
    """Load ``"imagenet"`` (the release for ``stem``) or a local file of any known layout into ``net``.

    ``net`` has ResNetBackbone keys (no SE/CBAM yet). Every backbone tensor must be in the file with
    the same shape; the file's ImageNet classifier (``fc.*``) is ignored.
    """
    if pretrained == "imagenet":
        state = _release_state(stem, depth, torchvision_weights)
    else:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"backbone.pretrained={pretrained!r}: expected 'imagenet', null or a checkpoint file; no file at {path}"
            )
        state = read_state(path)
    layout = detect_layout(state)
    if layout is not None and STEM_OF_LAYOUT[layout] != stem:
        raise RuntimeError(
            f"backbone.pretrained={pretrained!r} has the {STEM_OF_LAYOUT[layout]} stem ({layout} key layout) "
            f"but backbone.stem={stem}: set backbone.stem={STEM_OF_LAYOUT[layout]}"
        )
    state = to_backbone_keys(state, layout or "segattn")
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise RuntimeError(
            f"backbone.pretrained={pretrained!r} does not fit a ResNet-{depth}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and state[k].shape != own[k].shape]
    if shapes:
        raise RuntimeError(
            f"backbone.pretrained={pretrained!r} does not fit this ResNet-{depth} (file vs model): " + "; ".join(shapes[:3])
        )
    net.load_state_dict(state, strict=False)
