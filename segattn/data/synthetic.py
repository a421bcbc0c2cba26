"""Deterministic synthetic datasets in the official Cityscapes and ADE20K layouts.

Each class is drawn as shapes of varied size (rectangles, ellipses, polygons, bars) with a
class colour AND a class texture (flat, stripes at a class angle/period, checker, dots); pairs of
classes share a colour and differ only by texture (road/sidewalk, building/wall, vegetation/terrain,
person/rider, car/truck, bus/train). Per-image brightness jitter, per-class colour jitter and
Gaussian pixel noise make it a learning problem; void regions (ego-vehicle band, blobs with void
label ids) exercise the ignore index. Same ``seed`` -> same files, byte for byte.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segattn.data.cityscapes import TRAIN_TO_LABEL_ID

# Appearance of train id k: (RGB colour, texture, period px, angle deg). Pairs share colours and
# differ by a texture that a horizontal flip keeps apart (0 vs 90 deg, stripes vs checker).
APPEARANCE = (
    ((128, 64, 128), "flat", 0, 0),       # road
    ((128, 64, 128), "checker", 12, 0),   # sidewalk
    ((105, 105, 105), "stripes", 10, 0),  # building
    ((105, 105, 105), "stripes", 6, 90),  # wall
    ((190, 150, 150), "stripes", 5, 90),  # fence
    ((160, 160, 40), "flat", 0, 0),       # pole
    ((250, 170, 30), "dots", 6, 0),       # traffic light
    ((225, 225, 0), "stripes", 6, 45),    # traffic sign
    ((90, 150, 40), "dots", 8, 0),        # vegetation
    ((90, 150, 40), "stripes", 6, 0),     # terrain
    ((70, 130, 200), "flat", 0, 0),       # sky
    ((220, 30, 60), "stripes", 6, 0),     # person
    ((220, 30, 60), "checker", 12, 0),    # rider
    ((20, 30, 150), "flat", 0, 0),        # car
    ((20, 30, 150), "stripes", 8, 90),    # truck
    ((0, 100, 110), "stripes", 10, 0),    # bus
    ((0, 100, 110), "stripes", 10, 90),   # train
    ((230, 90, 230), "checker", 6, 0),    # motorcycle
    ((130, 20, 40), "stripes", 5, 0),     # bicycle
)
(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY,
 PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)
VOID = 19  # appearance indices >= VOID are void regions (random look, ignored)
EGO_LABEL_ID = 1
VOID_LABEL_IDS = (0, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30)
# Objects: class -> (shapes, height range px at H=256, width/height range, sampling weight)
OBJECTS = {
    WALL: (("rect",), (30, 90), (1.0, 4.0), 1),
    FENCE: (("bars", "rect"), (20, 50), (2.0, 6.0), 1),
    POLE: (("rect",), (60, 160), (0.08, 0.15), 2),
    LIGHT: (("rect",), (28, 60), (0.45, 0.6), 2),
    SIGN: (("triangle", "ellipse", "rect"), (24, 56), (0.8, 1.2), 2),
    VEGETATION: (("ellipse", "polygon"), (30, 120), (0.7, 1.5), 1),
    TERRAIN: (("polygon", "ellipse"), (30, 80), (2.0, 5.0), 1),
    PERSON: (("ellipse", "polygon"), (40, 110), (0.35, 0.5), 3),
    RIDER: (("ellipse", "polygon"), (40, 100), (0.4, 0.55), 2),
    CAR: (("car", "rect"), (25, 80), (1.3, 2.2), 1),
    TRUCK: (("rect", "car"), (40, 100), (1.2, 2.0), 1),
    BUS: (("rect",), (40, 100), (1.6, 2.6), 1),
    TRAIN: (("rect", "polygon"), (40, 90), (2.5, 4.5), 1),
    MOTORCYCLE: (("ellipse", "polygon"), (30, 70), (1.0, 1.6), 2),
    BICYCLE: (("polygon", "ellipse"), (30, 70), (1.2, 1.7), 2),
}
_OBJECT_IDS = list(OBJECTS)
_OBJECT_P = np.array([v[3] for v in OBJECTS.values()], float) / sum(v[3] for v in OBJECTS.values())
PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


def _draw(canvas: np.ndarray, value: int, shape: str, cx: float, bottom: float, w: float, h: float,
          rng: np.random.Generator) -> None:
    """Fill a ``shape`` of size w x h, horizontally centred at cx, standing on ``bottom``."""
    value = int(value)
    x0, y0, x1, y1 = int(cx - w / 2), int(bottom - h), int(cx + w / 2), int(bottom)
    if shape == "rect":
        cv2.rectangle(canvas, (x0, y0), (max(x1, x0 + 5), y1), value, -1)
    elif shape == "ellipse":
        cv2.ellipse(canvas, (int(cx), int(bottom - h / 2)), (max(int(w / 2), 3), max(int(h / 2), 3)),
                    float(rng.uniform(-15, 15)), 0, 360, value, -1)
    elif shape == "triangle":
        cv2.fillPoly(canvas, [np.array([(x0, y1), (x1, y1), (int(cx), y0)], np.int32)], value)
    elif shape == "car":  # body plus a narrower cabin
        cv2.rectangle(canvas, (x0, int(bottom - 0.6 * h)), (x1, y1), value, -1)
        cv2.rectangle(canvas, (int(x0 + 0.2 * w), y0), (int(x1 - 0.25 * w), y1), value, -1)
    elif shape == "bars":  # parallel vertical bars joined by a top rail
        n = int(rng.integers(3, 7))
        bar = max(int(w / (2 * n)), 4)
        for i in range(n):
            bx = int(x0 + i * (w - bar) / max(n - 1, 1))
            cv2.rectangle(canvas, (bx, y0), (bx + bar, y1), value, -1)
        cv2.rectangle(canvas, (x0, y0), (x1, int(y0 + max(h * 0.2, 4))), value, -1)
    else:  # random star-shaped polygon
        n = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.6, 1.0, n)
        pts = np.stack([cx + radii * np.cos(angles) * w / 2, bottom - h / 2 + radii * np.sin(angles) * h / 2], 1)
        cv2.fillPoly(canvas, [pts.astype(np.int32)], value)


def _street_layout(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Appearance map HxW (uint8: train ids 0..18, VOID+ for void) of a street-like scene."""
    s = h / 256
    canvas = np.full((h, w), SKY, np.uint8)
    horizon = int(h * rng.uniform(0.35, 0.55))
    canvas[horizon:] = ROAD
    for side in (0, 1):  # sidewalks narrowing towards the horizon
        if rng.random() < 0.8:
            top, low = rng.uniform(0.02, 0.2) * w, rng.uniform(0.15, 0.45) * w
            xs = np.array([0, top, low, 0]) if side == 0 else np.array([w, w - top, w - low, w])
            cv2.fillPoly(canvas, [np.stack([xs, [horizon, horizon, h, h]], 1).astype(np.int32)], SIDEWALK)
    x = 0
    while x < w:  # skyline of buildings, walls and trees standing on the horizon
        bw = int(rng.uniform(0.08, 0.35) * w)
        cls = rng.choice([BUILDING, BUILDING, BUILDING, VEGETATION, WALL])
        top = rng.uniform(0.05, 0.85) * horizon
        shape = "ellipse" if cls == VEGETATION else "rect"
        _draw(canvas, cls, shape, x + bw / 2, horizon + 4, bw, horizon + 4 - top, rng)
        x += bw
    for _ in range(int(rng.integers(12, 22))):
        cls = int(rng.choice(_OBJECT_IDS, p=_OBJECT_P))
        shapes, (h_lo, h_hi), (a_lo, a_hi), _ = OBJECTS[cls]
        oh = np.exp(rng.uniform(np.log(h_lo), np.log(h_hi))) * s
        ow = max(oh * rng.uniform(a_lo, a_hi), 8 * s)
        bottom = rng.uniform(horizon * 0.5, horizon) if cls in (LIGHT, SIGN) else rng.uniform(horizon + 5, h)
        cx = rng.uniform(0, w)
        if cls in (LIGHT, SIGN) and rng.random() < 0.6:  # on a pole
            _draw(canvas, POLE, "rect", cx, bottom + rng.uniform(40, 100) * s, 9 * s, 100 * s, rng)
        _draw(canvas, cls, str(rng.choice(shapes)), cx, bottom, ow, oh, rng)
    for _ in range(int(rng.integers(0, 3))):  # void blobs
        size = rng.uniform(15, 60) * s
        _draw(canvas, VOID + 1 + int(rng.integers(len(VOID_LABEL_IDS))), "polygon",
              rng.uniform(0, w), rng.uniform(size, h), size * rng.uniform(0.5, 2), size, rng)
    if rng.random() < 0.5:  # ego-vehicle bonnet
        band = rng.uniform(0.06, 0.14) * h
        cv2.ellipse(canvas, (w // 2, int(h + band)), (int(w * 0.7), int(2 * band)), 0, 180, 360, VOID, -1)
    return canvas


TEXTURES = ("flat", "stripes", "checker", "dots")


def _render(layout: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 image for an appearance map: class colour + texture, jitter and noise."""
    h, w = layout.shape
    n = 256  # per-look parameter tables, indexed by the layout
    colour = np.zeros((n, 3), np.float32)
    kind = np.zeros(n, np.uint8)
    period = np.ones(n, np.float32)
    angle = np.zeros(n, np.float32)
    for k, (rgb, texture, p, a) in enumerate(APPEARANCE):
        colour[k], kind[k], period[k], angle[k] = rgb, TEXTURES.index(texture), max(p, 1), a
    colour[: len(APPEARANCE)] += rng.normal(0, 8, (len(APPEARANCE), 3))
    colour[VOID:] = rng.uniform(0, 255, (n - VOID, 3))  # void: random colour, random stripes
    kind[VOID:], period[VOID:], angle[VOID:] = 1, rng.uniform(4, 16, n - VOID), rng.uniform(0, 180, n - VOID)
    phase = rng.uniform(0, 2 * np.pi, (2, n)).astype(np.float32)

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rad = np.radians(angle)[layout]
    freq = (2 * np.pi / period)[layout]
    px, py = phase[0][layout], phase[1][layout]
    u, v = xx * freq + px, yy * freq + py
    stripes = np.sign(np.sin((xx * np.cos(rad) + yy * np.sin(rad)) * freq + px))
    checker = np.sign(np.sin(u) * np.sin(v))
    dots = np.where(np.cos(u) + np.cos(v) > 1.0, np.float32(1), np.float32(-1))
    k = kind[layout]
    texture = np.where(k == 1, stripes, np.where(k == 2, checker, np.where(k == 3, dots, np.float32(0))))
    img = colour[layout] + np.float32(30) * texture[..., None]
    img *= np.float32(rng.uniform(0.8, 1.2))
    img += np.float32(10) * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0, 255, out=img).astype(np.uint8)


def _write(path: Path, array: np.ndarray, params: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), array, params):
        raise OSError(f"could not write {path}")


CITIES = {"train": ("aachen", "bremen", "zurich"), "val": ("frankfurt", "lindau"), "test": ("berlin",)}


def generate_cityscapes(
    root: str | Path, num_train: int = 200, num_val: int = 20, num_test: int = 0,
    height: int = 256, width: int = 512, seed: int = 0,
) -> Path:
    """Write ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and ``gtFine/<split>/<city>/
    *_gtFine_labelIds.png`` (official label ids, void ids included; test labels all 0 as in the
    official release). Returns ``root``."""
    root = Path(root)
    label_lut = np.zeros(256, np.uint8)
    label_lut[: len(TRAIN_TO_LABEL_ID)] = TRAIN_TO_LABEL_ID
    label_lut[VOID] = EGO_LABEL_ID
    label_lut[VOID + 1: VOID + 1 + len(VOID_LABEL_IDS)] = VOID_LABEL_IDS
    for split_no, (split, count) in enumerate((("train", num_train), ("val", num_val), ("test", num_test))):
        cities = CITIES[split]
        for i in range(count):
            rng = np.random.default_rng([seed, split_no, i])
            layout = _street_layout(rng, height, width)
            image = _render(layout, rng)
            city = cities[i % len(cities)]
            stem = f"{city}/{city}_{i // len(cities):06d}_000019"
            labels = label_lut[layout] if split != "test" else np.zeros_like(layout)
            _write(root / "leftImg8bit" / split / f"{stem}_leftImg8bit.png", image[:, :, ::-1], PNG_FAST)
            _write(root / "gtFine" / split / f"{stem}_gtFine_labelIds.png", labels, PNG_FAST)
    return root


# ADE20K ids (1-based, 0 = other) given the look of a Cityscapes-like class
ADE_IDS = {1: WALL, 2: BUILDING, 3: SKY, 5: VEGETATION, 7: ROAD, 10: TERRAIN, 12: SIDEWALK,
           13: PERSON, 21: CAR, 33: FENCE, 81: BUS, 84: TRUCK}


def _ade_layout(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Appearance map of an ADE20K-like image: a few large regions then shapes; VOID = other."""
    looks = list(ADE_IDS.values())
    canvas = np.full((h, w), rng.choice(looks), np.uint8)
    for _ in range(int(rng.integers(6, 14))):
        size = np.exp(rng.uniform(np.log(20), np.log(0.8 * min(h, w))))
        look = VOID if rng.random() < 0.15 else int(rng.choice(looks))
        _draw(canvas, look, str(rng.choice(["rect", "ellipse", "polygon"])), rng.uniform(0, w),
              rng.uniform(size / 2, h + size / 2), size * rng.uniform(0.5, 2), size, rng)
    return canvas


def generate_ade20k(
    root: str | Path, num_train: int = 100, num_val: int = 10, seed: int = 0,
    min_size: int = 192, max_size: int = 384,
) -> Path:
    """Write ``ADEChallengeData2016/images/{training,validation}/ADE_*.jpg`` and
    ``annotations/.../ADE_*.png`` (0 = other, 1..150 = class; a subset of ids is used) with
    random image sizes in [min_size, max_size]. Returns the ``ADEChallengeData2016`` folder."""
    root = Path(root) / "ADEChallengeData2016"
    look_to_id = np.zeros(256, np.uint8)  # VOID and unknown looks -> 0 (other)
    for ade_id, look in ADE_IDS.items():
        look_to_id[look] = ade_id
    for split_no, (split, tag, count) in enumerate((("training", "train", num_train), ("validation", "val", num_val))):
        for i in range(count):
            rng = np.random.default_rng([seed, 10 + split_no, i])
            h, w = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
            layout = _ade_layout(rng, h, w)
            image = _render(layout, rng)
            name = f"ADE_{tag}_{i + 1:08d}"
            _write(root / "images" / split / f"{name}.jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
            _write(root / "annotations" / split / f"{name}.png", look_to_id[layout], PNG_FAST)
    return root
