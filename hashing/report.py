"""Reports of the quality protocol: a table for people, JSON for scripts, a PNG plot to look at.
Shared by benchmarks/bench_quality.py and `semhash bench quality`."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from pathlib import Path

from . import __version__
from .files import atomic_write, atomic_write_text

HEADER = (
    f"{'method':<6} {'bits':>4} {'mAP@all':>8} {'mAP@1000':>9} {'P@r2':>6} {'empty':>6} "
    f"{'bits on':>10} {'fit s':>7} {'eval s':>6}"
)


def row_line(r) -> str:
    rep = r.report
    return (
        f"{r.method:<6} {r.bits:>4} {rep['map_all']:>8.3f} {rep['map_at_k']:>9.3f} "
        f"{rep['precision_at_radius']:>6.3f} {rep['empty_ball_fraction']:>6.2f} "
        f"{r.bits_on[0]:>4.2f}-{r.bits_on[1]:.2f} {r.fit_s:>7.1f} {r.eval_s:>6.2f}"
    )


def ratios(rows) -> list[str]:
    """Each method's mAP@all relative to PCA-ITQ at the same code length."""
    itq = {r.bits: r.report["map_all"] for r in rows if r.method == "itq"}
    return [
        f"{r.method:<6} {r.bits:>3} bits: {r.report['map_all'] / itq[r.bits]:.2f}x PCA-ITQ"
        for r in rows
        if r.bits in itq
    ]


def write(rows, cfg, out: str | os.PathLike) -> tuple[Path, Path]:
    """quality.json and quality.png in `out`, both written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "quality",
        "semhash": __version__,
        "config": asdict(cfg),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "rows": [asdict(r) for r in rows],
    }
    atomic_write_text(out / "quality.json", json.dumps(result, indent=1))
    _plot(rows, out / "quality.png")
    return out / "quality.json", out / "quality.png"


def _plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == method]
        left.plot([r.bits for r in mine], [r.report["map_all"] for r in mine], "o-", label=method)
        mid = next((r for r in mine if r.bits == 32), mine[len(mine) // 2])
        curve = mid.report["pr_curve"]
        right.plot(curve["recall"], curve["precision"], ".-", label=f"{method} {mid.bits} bits")
    bits = sorted({r.bits for r in rows})
    left.set(xlabel="bits", ylabel="mAP@all", title="mAP vs code length")
    left.set_xscale("log", base=2)
    left.set_xticks(bits, labels=[str(b) for b in bits])
    left.minorticks_off()
    right.set(xlabel="recall", ylabel="precision", title="Hamming-ball precision-recall (radius 0..bits)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
