"""Training speed: the autoencoder against the baselines it competes with, fitted on the same data.

    python benchmarks/bench_train.py [--dataset mnist] [--bits 32] [--ae-epochs 3] [--device auto]
    semhash bench train ...                      # the same, from the CLI

Every method (LSH, PCAH, PCA-ITQ, the autoencoder for a few epochs of `semhash train`'s recipe) is
fitted on the dataset's training split and then encodes it; reports seconds to fit, items per second
to fit and to encode, the autoencoder's seconds per epoch (and the projected time of the recipe's full
run), and each method's fit time relative to PCA-ITQ. Writes train.json and train.png into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..hashing import __version__
from ..hashing.data import load_dataset
from ..hashing.errors import ParameterError
from ..hashing.files import atomic_write, atomic_write_text
from ..hashing.hasher import make_hasher

METHODS = ("lsh", "pcah", "itq", "ae")


def run(
    dataset: str = "mnist",
    bits: int = 32,
    methods: tuple[str, ...] = METHODS,
    ae_epochs: int = 3,
    device: str = "auto",
    limit: int | None = None,
    data_root: str | None = None,
    out: str | Path = "benchmarks/results",
    log=print,
    progress: bool = True,
) -> dict:
    """Fit and encode with every method; write train.json and train.png into out, return the JSON's content."""
    import torch

    from ..hashing.train import TrainConfig, pick_device

    if ae_epochs < 1:
        raise ParameterError(f"--ae-epochs must be at least 1, got {ae_epochs}")
    data = load_dataset(dataset, "train", root=data_root).subset(limit)
    dev = str(pick_device(device))
    log(f"fitting on {len(data):,} items of {dataset} ({bits} bits; autoencoder: {ae_epochs} epochs on {dev}):")
    # warm-up, untimed: the first pass over the data pays for page faults and BLAS set-up, which
    # would otherwise be charged to whichever method runs first
    make_hasher("lsh", bits=bits).fit(data.subset(min(len(data), 1000))).encode(data)
    rows = []
    for method in methods:
        options = (
            {"epochs": ae_epochs, "device": device, "patience": ae_epochs, "progress": progress}
            if method == "ae"
            else {}
        )
        hasher = make_hasher(method, bits=bits, **options)
        start = time.perf_counter()
        hasher.fit(data)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        hasher.encode(data)
        encode_s = time.perf_counter() - start
        row = {
            "method": method,
            "fit_s": fit_s,
            "fit_items_per_s": len(data) / fit_s,
            "encode_s": encode_s,
            "encode_items_per_s": len(data) / encode_s,
        }
        if method == "ae":
            t = hasher.training_
            row.update(
                device=t["device"],
                epochs=t["epochs"],
                seconds_per_epoch=t["seconds"] / max(t["epochs"], 1),
                samples_per_s=t["samples_per_second"],
            )
            row["projected_full_recipe_s"] = row["seconds_per_epoch"] * TrainConfig().epochs
        rows.append(row)
        log(
            f"  {method:<5} fit {fit_s:8.2f} s ({row['fit_items_per_s']:>10,.0f} items/s)   "
            f"encode {encode_s:6.2f} s ({row['encode_items_per_s']:>10,.0f} items/s)"
            + (
                f"   {row['seconds_per_epoch']:.1f} s/epoch, {row['samples_per_s']:,.0f} samples/s on {row['device']}"
                if method == "ae"
                else ""
            )
        )
    ratios = {}
    itq = next((r for r in rows if r["method"] == "itq"), None)
    if itq:
        ratios = {f"fit {r['method']} / itq": r["fit_s"] / itq["fit_s"] for r in rows if r["method"] != "itq"}
        log("ratios:")
        for k, v in ratios.items():
            log(f"  {k:<16} {v:8.2f}x")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "train",
        "semhash": __version__,
        "dataset": dataset,
        "items": len(data),
        "bits": bits,
        "ae_epochs": ae_epochs,
        "device": dev,
        "torch": torch.__version__,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "rows": rows,
        "ratios": ratios,
    }
    atomic_write_text(out / "train.json", json.dumps(result, indent=1))
    plot(rows, result, out / "train.png")
    log(f"wrote {out / 'train.json'} and {out / 'train.png'}")
    return result


def plot(rows: list[dict], result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [r["method"] + (f" ({r['epochs']} ep.)" if r["method"] == "ae" else "") for r in rows]
    x = np.arange(len(rows))
    left.bar(x, [r["fit_s"] for r in rows], color="tab:blue")
    left.set(yscale="log", ylabel="seconds", title=f"fit on {result['items']:,} items of {result['dataset']}")
    right.bar(x, [r["encode_items_per_s"] for r in rows], color="tab:green")
    right.set(yscale="log", ylabel="items / s", title=f"encode ({result['bits']} bits, {result['device']})")
    for ax in (left, right):
        ax.set_xticks(x, names)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--bits", type=int, default=32)
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--ae-epochs", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--limit", type=int, default=None, help="train on the first N items only")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    run(
        args.dataset,
        args.bits,
        tuple(args.methods),
        args.ae_epochs,
        args.device,
        args.limit,
        args.data_root,
        args.out,
        log=lambda line: print(line, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
