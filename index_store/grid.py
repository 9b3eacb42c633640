"""Search results as a picture: each query's image followed by its neighbours' images, with their
labels and Hamming distances (for `semhash search --show grid.png`)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..hashing.data import load_dataset, parse_item_key
from ..hashing.files import atomic_write


def item_pixels(key: str, source: str | None, data_root=None) -> np.ndarray | None:
    """(H, W) or (H, W, 3) floats in [0, 1] of an indexed item: its image file, or its row of a
    named data set (keys '<name>/<split>/<row>'); None when neither is at hand."""
    if source and os.path.isfile(source):
        from ..hashing.hasher import open_image

        return np.asarray(open_image(Path(source)).convert("RGB"), dtype=np.float32) / 255.0
    row_of = parse_item_key(key)
    if row_of is not None:
        name, split, row = row_of
        x = _named(name, split, data_root)
        return _hwc(x[row]) if row < len(x) else None
    return None


@lru_cache(maxsize=4)
def _named(name: str, split: str, data_root):
    return load_dataset(name, split=split, root=data_root, download=False).x


def _hwc(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    return a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))


def write_grid(result: dict, query_pixels: list[np.ndarray | None], path, data_root=None) -> Path:
    """One row per query: the query, then its hits left to right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    queries = result["queries"]
    cols = 1 + max((len(q["hits"]) for q in queries), default=0)
    fig, axes = plt.subplots(len(queries), cols, figsize=(1.3 * cols, 1.5 * len(queries)), squeeze=False)
    for r, (q, pixels) in enumerate(zip(queries, query_pixels)):
        cells = [(pixels, "query")] + [
            (
                item_pixels(h["key"], h["source"], data_root),
                f"{'' if h['label'] is None else h['label']}  d={h['distance']}",
            )
            for h in q["hits"]
        ]
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(cells):
                img, title = cells[c]
                if img is not None:
                    ax.imshow(np.clip(img, 0, 1), cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
                ax.set_title(title, fontsize=7, color="tab:blue" if c == 0 else "black")
    fig.tight_layout()
    out = atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return out
