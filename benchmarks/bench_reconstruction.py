"""The lecture's classic comparison: a deep autoencoder with a 30-dimensional real bottleneck against
PCA with 30 components, on the MNIST test set (Hinton & Salakhutdinov, Science 2006: average squared
reconstruction error per image 3.00 vs 13.87, ratio 0.22).

    python benchmarks/bench_reconstruction.py [--epochs 45] [--device auto]

Both are fitted on the 60,000 training images; the error is the sum over the 784 pixels (in [0, 1])
of the squared difference, averaged over the 10,000 test images. Writes reconstruction.json and
reconstruction.png (test digits, PCA's and the AE's reconstructions).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..hashing import __version__
from ..hashing.baselines import principal_directions
from ..hashing.data import load_dataset
from ..hashing.files import atomic_write, atomic_write_text
from ..hashing.models import Regularizers
from ..hashing.train import TrainConfig, train


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=45)
    p.add_argument("--dims", type=int, default=30)
    p.add_argument("--device", default="auto")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)

    train_set = load_dataset("mnist", "train", root=args.data_root)
    test_set = load_dataset("mnist", "test", root=args.data_root)
    x_train, x_test = train_set.flat(), test_set.flat()

    t = time.perf_counter()
    mean, pcs = principal_directions(x_train, args.dims)
    pca_rec = ((x_test - mean) @ pcs) @ pcs.T + mean
    pca_s = time.perf_counter() - t
    pca_err = float(((pca_rec - x_test) ** 2).sum(axis=1).mean())

    cfg = TrainConfig(
        bits=args.dims,
        bottleneck="real",
        hidden=(1000, 500, 250),
        epochs=args.epochs,
        batch_size=128,
        patience=args.epochs,
        device=args.device,
        val_items=0,
        reg=Regularizers(),
    )  # the plain autoencoder: reconstruction only
    result = train(cfg, train_set, progress=True)
    with torch.no_grad():
        ae_rec = (
            torch.cat(
                [
                    result.model(torch.from_numpy(x_test[i : i + 2000]).view(-1, 1, 28, 28))[0]
                    for i in range(0, len(x_test), 2000)
                ]
            )
            .reshape(len(x_test), -1)
            .numpy()
        )
    ae_err = float(((ae_rec - x_test) ** 2).sum(axis=1).mean())
    ratio = ae_err / pca_err
    print(f"average squared reconstruction error per test image ({args.dims} dimensions):")
    print(f"  PCA          {pca_err:7.2f}   (fit {pca_s:.1f} s)")
    print(
        f"  deep AE      {ae_err:7.2f}   (train {result.seconds:.0f} s on {result.device}, {len(result.history)} epochs)"
    )
    print(f"  ratio AE/PCA {ratio:7.3f}   (Hinton & Salakhutdinov 2006: 3.00 / 13.87 = 0.22)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {
        "benchmark": "reconstruction",
        "semhash": __version__,
        "dims": args.dims,
        "epochs": len(result.history),
        "pca_error": pca_err,
        "ae_error": ae_err,
        "ratio": ratio,
        "train_seconds": result.seconds,
        "device": result.device,
        "samples_per_second": result.samples_per_second,
        "reference": {"pca_error": 13.87, "ae_error": 3.00, "ratio": 0.22},
    }
    atomic_write_text(out / "reconstruction.json", json.dumps(res, indent=1))
    plot(x_test[:10], pca_rec[:10], ae_rec[:10], out / "reconstruction.png")
    print(f"wrote {out / 'reconstruction.json'} and {out / 'reconstruction.png'}")
    return 0


def plot(x, pca, ae, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, len(x), figsize=(len(x) * 0.9, 3))
    for row, (name, imgs) in enumerate((("test", x), ("PCA", pca), ("deep AE", ae))):
        for i, img in enumerate(imgs):
            axes[row, i].imshow(np.clip(img.reshape(28, 28), 0, 1), cmap="gray")
            axes[row, i].axis("off")
        axes[row, 0].set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


if __name__ == "__main__":
    sys.exit(main())
