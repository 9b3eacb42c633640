"""Generated pictures for the benchmarks: photo-like images of any size, and small models of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def picture(rng, width: int, height: int):
    """A smooth colour picture with some texture (compresses like a photo)."""
    from PIL import Image

    small = rng.integers(0, 256, (height // 50 + 2, width // 50 + 2, 3), dtype=np.uint8)
    base = Image.fromarray(small, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.integers(-12, 12, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(base, dtype=np.int16) + noise, 0, 255).astype(np.uint8), "RGB")


def model_for(folder: Path, shape: tuple[int, int, int]) -> Path:
    """A 32-bit ITQ model of images of this shape (trained on a few generated ones)."""
    from ..hashing.baselines import ITQ
    from ..hashing.data import load_dataset

    c, h, w = shape
    train = folder / f"train-{c}x{h}x{w}"
    train.mkdir()
    rng = np.random.default_rng(1)
    for i in range(200):
        picture(rng, w * 2, h * 2).resize((w, h)).convert("L" if c == 1 else "RGB").save(train / f"{i}.png")
    path = folder / f"model-{c}x{h}x{w}.semhash"
    ITQ(bits=32).fit(load_dataset(str(train))).save(path)
    return path
