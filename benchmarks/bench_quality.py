"""Retrieval quality of every hasher on the MNIST protocol, side by side in one run.

    python benchmarks/bench_quality.py [--bits 16 32 64] [--methods itq pcah lsh] [--out benchmarks/results]

Prints a table with each method's mAP@all relative to PCA-ITQ at the same code length, and writes
quality.json plus quality.png (mAP vs bits; precision-recall curves over Hamming radii).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from hashing import __version__
from hashing.protocol import QualityConfig, run_quality


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--bits", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--methods", nargs="+", default=["ae", "itq", "pcah", "lsh"])
    p.add_argument("--ae-epochs", type=int, default=None, help="epochs of the autoencoder (default: semhash train's)")
    p.add_argument("--device", default="auto", help="device for the autoencoder: auto, cpu, cuda")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    ae_options = {"device": args.device, **({"epochs": args.ae_epochs} if args.ae_epochs else {})}
    cfg = QualityConfig(dataset=args.dataset, bits=tuple(args.bits), methods=tuple(args.methods),
                        queries=args.queries, data_root=args.data_root, ae_options=ae_options)
    header = (f"{'method':<6} {'bits':>4} {'mAP@all':>8} {'mAP@1000':>9} {'P@r2':>6} {'empty':>6} "
              f"{'bits on':>10} {'fit s':>7} {'eval s':>6}")
    print(header)
    rows = run_quality(cfg, progress=lambda r: print(
        f"{r.method:<6} {r.bits:>4} {r.report['map_all']:>8.3f} {r.report['map_at_k']:>9.3f} "
        f"{r.report['precision_at_radius']:>6.3f} {r.report['empty_ball_fraction']:>6.2f} "
        f"{r.bits_on[0]:>4.2f}-{r.bits_on[1]:.2f} {r.fit_s:>7.1f} {r.eval_s:>6.2f}", flush=True))
    itq = {r.bits: r.report["map_all"] for r in rows if r.method == "itq"}
    if itq:
        print("\nmAP@all relative to PCA-ITQ at the same code length:")
        for r in rows:
            if r.bits in itq:
                print(f"  {r.method:<6} {r.bits:>3} bits: {r.report['map_all'] / itq[r.bits]:.2f}x")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "quality", "semhash": __version__, "config": asdict(cfg),
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
              "rows": [asdict(r) for r in rows]}
    write_atomic(out / "quality.json", json.dumps(result, indent=1).encode())
    plot(rows, out / "quality.png")
    print(f"\nwrote {out / 'quality.json'} and {out / 'quality.png'}")
    return 0


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def plot(rows, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == method]
        left.plot([r.bits for r in mine], [r.report["map_all"] for r in mine], "o-", label=method)
        mid = mine[len(mine) // 2]
        curve = mid.report["pr_curve"]
        right.plot(curve["recall"], curve["precision"], ".-", label=f"{method} {mid.bits} bits")
    left.set(xlabel="bits", ylabel="mAP@all", title="MNIST: mAP vs code length")
    left.set_xscale("log", base=2)
    left.set_xticks(sorted({r.bits for r in rows}), labels=[str(b) for b in sorted({r.bits for r in rows})])
    left.minorticks_off()
    right.set(xlabel="recall", ylabel="precision", title="Hamming-ball precision-recall (radius 0..bits)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
