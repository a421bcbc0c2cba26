"""How far attention looks: entropy, mean attended distance in input pixels and, for criss-cross after
its R passes, the share of the mass beyond the query's own row and column.

Computed from the weights of :class:`~segattn.visualization.capture.AttentionRecord` (the attention
maps alone: the residual path ``x + gamma * ...`` and the value projections are left out), on a grid
of at most ``MAX_QUERY_SIDE`` x ``MAX_QUERY_SIDE`` query positions.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from segattn.visualization.capture import AttentionRecord

MAX_QUERY_SIDE = 32


def query_grid(h: int, w: int) -> tuple[Tensor, Tensor]:
    """Row and column indices (``Q``, each) of evenly spread query positions of an ``h x w`` map."""
    ys = torch.linspace(0, h - 1, min(h, MAX_QUERY_SIDE)).round().long().unique()
    xs = torch.linspace(0, w - 1, min(w, MAX_QUERY_SIDE)).round().long().unique()
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return grid_y.flatten(), grid_x.flatten()


def cell_centres(cells: int, features: int, stride: float) -> Tensor:
    """Input-pixel coordinates of ``cells`` evenly spaced cells over ``features`` feature positions."""
    return (torch.arange(cells, dtype=torch.float64) + 0.5) * (features / cells) * stride


def criss_cross_mass(records: Sequence[AttentionRecord], ys: Tensor, xs: Tensor) -> Tensor:
    """``B x Q x h x w``: where the output at each query comes from after the R passes of ``records``
    (call order), i.e. the product of the R sparse ``B x h x w x (h + w)`` maps, each row summing to 1."""
    batch, h, w, _ = records[0].weights.shape
    mass = torch.zeros(batch, len(ys), h, w, dtype=torch.float64)
    mass[:, torch.arange(len(ys)), ys, xs] = 1.0
    for record in reversed(records):  # the last pass reads the outputs of the one before it
        weights = record.weights.double()
        column, row = weights[..., :h], weights[..., h:]  # [b, i, j, i'] over u's column, [b, i, j, j'] over its row
        mass = torch.einsum("bqij,bijk->bqkj", mass, column) + torch.einsum("bqij,bijk->bqik", mass, row)
    return mass


def spread_stats(mass: Tensor, query_yx: Tensor, key_yx: Tensor) -> dict[str, float]:
    """``mass``: ``B x Q x N`` attention of Q queries over N keys (signed weights are read as their
    share ``|w| / sum |w|``); ``query_yx`` ``Q x 2`` and ``key_yx`` ``N x 2`` in input pixels.
    Returns the mean entropy (nats) and the mean attended distance (pixels) over batch and queries."""
    share = mass.double().abs()
    share = share / share.sum(-1, keepdim=True).clamp_min(1e-12)
    entropy = -(share * share.clamp_min(1e-12).log()).sum(-1)
    distance = (share * torch.cdist(query_yx.double(), key_yx.double())).sum(-1)
    return {"entropy": float(entropy.mean()), "distance_px": float(distance.mean())}


def grid_points(ys: Tensor, xs: Tensor, y_centres: Tensor, x_centres: Tensor) -> Tensor:
    """``Q x 2`` input-pixel coordinates of grid cells ``(ys, xs)``."""
    return torch.stack([y_centres[ys], x_centres[xs]], dim=1)


def block_reach(records: Sequence[AttentionRecord], image_size: tuple[int, int]) -> dict[str, float]:
    """Entropy and mean distance of one block's attention on images of ``image_size`` (H, W); for
    criss-cross also ``beyond_cross``: the share of mass outside the query's row and column after all
    passes (0 after one pass). Channel attention: the entropy over channels only."""
    first = records[0]
    if first.kind == "channel":
        share = first.weights.double().clamp_min(1e-12)
        return {"entropy": float(-(share * share.log()).sum(-1).mean())}
    (h, w), (kh, kw) = first.size, first.key_size
    stride_y, stride_x = image_size[0] / h, image_size[1] / w
    ys, xs = query_grid(h, w)
    queries = grid_points(ys, xs, cell_centres(h, h, stride_y), cell_centres(w, w, stride_x))
    if first.kind == "criss_cross":
        mass = criss_cross_mass(records, ys, xs)  # B x Q x h x w
        all_y, all_x = (t.flatten() for t in torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"))
        stats = spread_stats(mass.flatten(2), queries, grid_points(all_y, all_x, cell_centres(h, h, stride_y),
                                                                   cell_centres(w, w, stride_x)))
        off_cross = (ys[:, None, None] != torch.arange(h)[None, :, None]) & (xs[:, None, None] != torch.arange(w)[None, None, :])
        stats["beyond_cross"] = float((mass * off_cross).sum((-2, -1)).mean())
        return stats
    rows = first.weights[:, ys * w + xs]  # B x Q x N, N = kh * kw keys (sub-sampled for non-local)
    key_y, key_x = (t.flatten() for t in torch.meshgrid(torch.arange(kh), torch.arange(kw), indexing="ij"))
    keys = grid_points(key_y, key_x, cell_centres(kh, h, stride_y), cell_centres(kw, w, stride_x))
    return spread_stats(rows, queries, keys)
