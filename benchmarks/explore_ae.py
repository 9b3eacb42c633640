"""Exploration: train one autoencoder configuration and measure the full MNIST protocol after every
epoch (mAP@all, precision within radius 2, empty balls, bit usage), to see how training unfolds.

    semhash bench explore --bits 32 --epochs 30 --neighbours 40 --k 50 --affine 1 --self-pairs 0 [--threads 1]

One JSON line per epoch; writes explore.json and explore.png (the metrics per epoch).
benchmarks/README.md records what each configuration reached.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..hashing.autoencoder.config import TrainConfig
from ..hashing.autoencoder.regularizers import Regularizers
from ..hashing.autoencoder.train import train
from ..hashing.codes import pack, unpack
from ..hashing.data import load_dataset
from ..hashing.metrics import evaluate, label_relevance
from .results import DEFAULT_OUT, pyplot, save_figure, write_result, written


def run(
    bits: int = 32,
    epochs: int = 30,
    reg: Regularizers | None = None,
    data_root: str | None = None,
    out: str | Path = DEFAULT_OUT,
    log=print,
    **train_options,
) -> dict:
    """Train with these regularizers (default: `semhash train`'s) and TrainConfig options (bottleneck,
    noise_std, lr_decay, threads, ...), logging the protocol's figures after each epoch as a JSON
    line; write explore.json and explore.png into out and return the JSON's content."""
    db = load_dataset("mnist", "train", root=data_root)
    q = load_dataset("mnist", "test", root=data_root).subset(1000)
    lines: list[dict] = []
    reg = reg or TrainConfig().reg
    cfg = TrainConfig(bits=bits, epochs=epochs, patience=epochs, reg=reg, **train_options)
    train(cfg, db, progress=False, on_epoch=_measure(db, q, lines, log))
    result = {"config": cfg.to_dict(), "epochs": lines}
    paths = write_result(out, "explore", result, lambda path: plot(lines, path))
    log(written(paths))
    return result


def _measure(db, q, lines: list[dict], log):
    """The callback after each epoch: the protocol's figures of the model, appended to lines and logged."""
    rel = label_relevance(q.labels, db.labels)
    t0 = time.perf_counter()

    def measure(model, metrics):
        with torch.no_grad():
            codes_db = pack((model.activations(torch.from_numpy(db.x)) > 0).numpy())
            codes_q = pack((model.activations(torch.from_numpy(q.x)) > 0).numpy())
        rep = evaluate(codes_q, codes_db, rel)
        on = unpack(codes_db).mean(0)
        lines.append(
            {
                "epoch": metrics["epoch"],
                "map": round(rep.map_all, 4),
                "p_r2": round(rep.precision_at_radius, 4),
                "empty": round(rep.empty_ball_fraction, 4),
                "bits_on": [round(float(on.min()), 3), round(float(on.max()), 3)],
                "val_map": round(metrics["map"], 4),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        log(json.dumps(lines[-1]))

    return measure


def plot(lines: list[dict], path: Path) -> None:
    """The protocol's figures after each epoch."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [line["epoch"] for line in lines]
    for key, label in (("map", "mAP@all"), ("p_r2", "P@r2"), ("empty", "empty balls"), ("val_map", "validation mAP")):
        ax.plot(epochs, [line[key] for line in lines], ".-", label=label)
    ax.set(xlabel="epoch", title="the protocol after each epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)
