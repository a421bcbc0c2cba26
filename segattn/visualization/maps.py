"""Per-point attention maps from captured weights (one image: no batch dimension).

A map is the row of the attention matrix for one query position u: the weight u gives to every
position v, as an ``h x w`` tensor on the block's grid (non-local: on its key grid).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def feature_cell(point: Sequence[int], image_size: Sequence[int], grid_size: Sequence[int]) -> tuple[int, int]:
    """Pixel ``(y, x)`` of an ``H x W`` image -> the cell ``(i, j)`` of an ``h x w`` grid that covers
    it when the grid is upsampled to the image by nearest neighbour (:func:`upsample_map`)."""
    return _nearest_source(point[0], grid_size[0], image_size[0]), _nearest_source(point[1], grid_size[1], image_size[1])


def _nearest_source(index: int, source: int, target: int) -> int:
    """The source index that ``F.interpolate(mode="nearest")`` reads for output ``index`` (its float32 arithmetic)."""
    scale = np.float32(source) / np.float32(target)
    return min(int(np.floor(np.float32(index) * scale)), source - 1)


def cross_propagate(p: Tensor, weights: Tensor) -> Tensor:
    """``p A`` for one criss-cross pass: ``p`` (h x w) weights over positions, ``weights``
    ``h x w x (h + w)`` of that pass -> h x w. Position w = (i, j) passes ``p[w] * weights[i, j, k]``
    to (k, j) on its column and ``p[w] * weights[i, j, h + l]`` to (i, l) on its row."""
    h = weights.shape[0]
    return torch.einsum("ij,ijk->kj", p, weights[..., :h]) + torch.einsum("ij,ijl->il", p, weights[..., h:])


def criss_cross_map(passes: Sequence[Tensor], cell: tuple[int, int]) -> Tensor:
    """Effective attention of ``cell`` after ``len(passes)`` criss-cross passes (``passes`` in call
    order, each ``h x w x (h + w)``): the row u of ``A_R ... A_1``, i.e. u attends over its cross in
    the last pass, each position of that cross over its own cross in the pass before, and so on.
    One pass: u's row and column only (zero elsewhere); two passes reach every position."""
    p = torch.zeros(passes[0].shape[:2], dtype=passes[0].dtype)
    p[cell] = 1.0
    for weights in reversed(passes):
        p = cross_propagate(p, weights)
    return p


def dense_map(weights: Tensor, cell: tuple[int, int], size: Sequence[int], key_size: Sequence[int]) -> Tensor:
    """Row of a ``hw x N`` attention matrix (position or non-local) for ``cell`` of the ``size``
    query grid, as the ``key_size`` grid of its N keys."""
    return weights[cell[0] * size[1] + cell[1]].reshape(tuple(key_size))


def channel_affinities(weights: Tensor, features: Tensor, cell: tuple[int, int], top: int = 8):
    """The channel most active at ``cell`` (``features``: C x h x w) and the ``top`` channels it
    attends to most in the ``C x C`` channel attention: ``(channel, indices, weights)``."""
    channel = int(features[:, cell[0], cell[1]].argmax())
    values, indices = weights[channel].topk(min(top, weights.shape[1]))
    return channel, indices.tolist(), values.tolist()


def upsample_map(grid_map: Tensor, size: Sequence[int]) -> np.ndarray:
    """``h x w`` map -> ``H x W`` float array by nearest neighbour (each cell drawn as its block)."""
    return F.interpolate(grid_map[None, None].float(), size=tuple(size), mode="nearest")[0, 0].numpy()
