"""A class-sorted RGB image folder made from MNIST, for issue 11's check that the default recipe
beats PCA-ITQ on data of another size and layout than the one it was tuned on.

    python -m semhash.benchmarks.rgb_folder 6000 DIR --size 24
    semhash bench quality --dataset DIR --bits 32 --method ae --method itq --method lsh

Each of the first n MNIST training digits is resized to size x size and drawn in a random ink
colour (each channel 0.4-1.0 of full) on black, saved as DIR/class_<label>/<row>.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from ..hashing.data import load_dataset


def make(n: int, out: str | Path, size: int = 24, data_root: str | None = None, seed: int = 0) -> Path:
    """Write the folder; returns its path."""
    data = load_dataset("mnist", "train", root=data_root).subset(n)
    digits = (data.x[:, 0] * 255).round().astype(np.uint8)
    rng, out = np.random.default_rng(seed), Path(out)
    for row, (digit, label) in enumerate(zip(digits, data.labels.tolist())):
        ink = rng.uniform(0.4, 1.0, 3)
        grey = np.asarray(Image.fromarray(digit).resize((size, size), Image.BILINEAR), dtype=np.float32) / 255
        folder = out / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((grey[..., None] * ink * 255).astype(np.uint8), "RGB").save(folder / f"{row:05d}.png")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("out")
    parser.add_argument("--size", type=int, default=24)
    parser.add_argument("--data-root")
    args = parser.parse_args()
    print(make(args.n, args.out, args.size, args.data_root))
