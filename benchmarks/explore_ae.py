"""Exploration: train one autoencoder configuration and measure the full MNIST protocol after every
epoch (mAP@all, precision within radius 2, empty balls, bit usage), to see how training unfolds.

    python benchmarks/explore_ae.py --bits 32 --epochs 30 --neighbours 40 --k 5 [--bottleneck noise] [--threads 1]

One JSON line per epoch on stdout; benchmarks/README.md records what each configuration reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from ..hashing.codes import pack, unpack
from ..hashing.data import load_dataset
from ..hashing.metrics import evaluate, label_relevance
from ..hashing.models import Regularizers
from ..hashing.train import TrainConfig, train


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bits", type=int, default=32)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--neighbours", type=float, default=40.0)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--bottleneck", default="noise")
    p.add_argument("--noise-std", type=float, default=4.0)
    p.add_argument("--mask", type=float, default=0.0, help="denoising: input masking probability")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data-root", default=None)
    args = p.parse_args(argv)
    db = load_dataset("mnist", "train", root=args.data_root)
    q = load_dataset("mnist", "test", root=args.data_root).subset(1000)
    rel = label_relevance(q.labels.numpy(), db.labels.numpy())
    t0 = time.perf_counter()

    def measure(model, metrics):
        with torch.no_grad():
            codes_db = pack((model.activations(db.x) > 0).numpy())
            codes_q = pack((model.activations(q.x) > 0).numpy())
        rep = evaluate(codes_q, codes_db, rel)
        on = unpack(codes_db).mean(0)
        print(
            json.dumps(
                {
                    "epoch": metrics["epoch"],
                    "map": round(rep.map_all, 4),
                    "p_r2": round(rep.precision_at_radius, 4),
                    "empty": round(rep.empty_ball_fraction, 4),
                    "bits_on": [round(float(on.min()), 3), round(float(on.max()), 3)],
                    "val_map": round(metrics["map"], 4),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            ),
            flush=True,
        )

    cfg = TrainConfig(
        bits=args.bits,
        epochs=args.epochs,
        patience=args.epochs,
        bottleneck=args.bottleneck,
        noise_std=args.noise_std,
        threads=args.threads,
        reg=Regularizers(neighbours=args.neighbours, k_neighbours=args.k, mask_prob=args.mask),
    )
    train(cfg, db, progress=False, on_epoch=measure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
