"""Search results as a picture: each query's image followed by its neighbours' images, with their
labels and Hamming distances (for `semhash search --show grid.png`)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..hashing import inputs
from ..hashing.errors import DataError
from ..hashing.files import atomic_write


def item_pixels(key: str, source: str | None, data_root=None) -> np.ndarray | None:
    """(H, W) or (H, W, 3) floats in [0, 1] of an indexed item: its file as the input kind that
    reads it pictures it, or its row of a named data set (keys '<name>/<split>/<row>'); None when
    neither is at hand."""
    if source and os.path.isfile(source):
        return next((p for p in (kind.preview(source) for kind in inputs.kinds()) if p is not None), None)
    from ..hashing.data import parse_item_key

    row_of = parse_item_key(key)
    if row_of is not None:
        name, split, row = row_of
        data = _named(name, split, data_root)
        return inputs.get(data.kind).picture(data.x[row]) if row < len(data) else None
    return None


@lru_cache(maxsize=4)
def _named(name: str, split: str, data_root):
    from ..hashing.data import load_dataset

    return load_dataset(name, split=split, root=data_root, download=False)


CELL, CAPTION, GAP = 96, 14, 4  # pixels: a tile, its caption line, the space between tiles


def write_grid(result: dict, query_pixels: list[np.ndarray | None], path, data_root=None) -> Path:
    """One row per query: the query, then its hits left to right, each captioned with its label
    (its class name when the index has them) and Hamming distance. Drawn with Pillow alone."""
    from PIL import Image, ImageDraw

    queries = result["queries"]
    cols = 1 + max((len(q["hits"]) for q in queries), default=0)
    step_x, step_y = CELL + GAP, CELL + CAPTION + GAP
    sheet = Image.new("RGB", (cols * step_x + GAP, len(queries) * step_y + GAP), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (q, pixels) in enumerate(zip(queries, query_pixels)):
        cells = [(pixels, "query")] + [
            (safe_pixels(h["key"], h["source"], data_root), f"{_label(h)} d={h['distance']}") for h in q["hits"]
        ]
        for c, (img, caption) in enumerate(cells):
            x, y = GAP + c * step_x, GAP + r * step_y
            if img is REFUSED:
                draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=(224, 224, 224))
                draw.text((x + 4, y + CELL // 2 - 6), "no preview", fill=(160, 0, 0))
            elif img is not None:
                sheet.paste(_tile(img), (x, y))
            draw.text((x, y + CELL + 1), caption, fill=(31, 119, 180) if c == 0 else (0, 0, 0))
    return atomic_write(path, lambda tmp: sheet.save(tmp, format="PNG"))


REFUSED = object()  # a hit whose image file is refused (too large, unreadable): a grey tile says so


def safe_pixels(key: str, source: str | None, data_root=None):
    """An item's pixels (item_pixels), None, or REFUSED: an image file the preview refuses (a
    13,000 x 13,000 PNG) gets a tile saying so, and the grid of the others is still drawn."""
    try:
        return item_pixels(key, source, data_root)
    except DataError:
        if not (source and os.path.isfile(source)):
            raise  # a named data set not under the data root: the user can fix that, and should know
        return REFUSED


def _label(hit: dict) -> str:
    label = hit.get("class", hit.get("label"))
    return "" if label is None else str(label)


def _tile(pixels: np.ndarray):
    """(H, W) or (H, W, 3) floats in [0, 1] -> a CELL x CELL RGB tile (aspect kept, small images
    enlarged without blurring)."""
    from PIL import Image

    im = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).convert("RGB")
    scale = CELL / max(im.size)
    resample = Image.NEAREST if scale > 1 else Image.BILINEAR
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), resample)
    tile = Image.new("RGB", (CELL, CELL), "white")
    tile.paste(im, ((CELL - im.width) // 2, (CELL - im.height) // 2))
    return tile
