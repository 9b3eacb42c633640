"""Retrieval quality of every hasher on the MNIST protocol, side by side in one run.

    semhash bench quality [--bits 16 --bits 32 --bits 64] [--method ae --method itq ...] [--out DIR]

Database = the 60,000 MNIST training images (every hasher is fitted on them), queries = the first
1,000 test images, relevance = same label. Prints a table and each method's mAP@all relative to
PCA-ITQ at the same code length; writes quality.json and quality.png (mAP vs bits; precision-recall
curves over Hamming radii).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..hashing.protocol import QualityConfig, run_quality
from .results import DEFAULT_OUT, pyplot, save_figure, write_result, written

HEADER = (
    f"{'method':<6} {'bits':>4} {'mAP@all':>8} {'mAP@1000':>9} {'P@100':>6} {'P@r2':>6} {'empty':>6} "
    f"{'bits on':>10} {'fit s':>7} {'eval s':>6}"
)


def run(
    dataset: str = "mnist",
    bits: tuple[int, ...] = (16, 32, 64),
    methods: tuple[str, ...] = ("ae", "itq", "pcah", "lsh"),
    queries: int = 1000,
    ae_options: dict | None = None,
    limit: int | None = None,
    data_root: str | None = None,
    out: str | Path = DEFAULT_OUT,
    log=print,
) -> dict:
    """Fit and evaluate every method at every code length; write quality.json and quality.png into
    out and return the JSON's content. ae_options go to the autoencoder (device, epochs, reg, ...);
    limit keeps the database to the first N training items."""
    cfg = QualityConfig(
        dataset=dataset,
        bits=tuple(bits),
        methods=tuple(methods),
        queries=queries,
        data_root=data_root,
        database_limit=limit,
        ae_options=dict(ae_options or {}),
    )
    log(HEADER)
    rows = run_quality(cfg, progress=lambda r: log(row_line(r)))
    log("\n" + "\n".join(ratios(rows)))
    result = {"config": asdict(cfg), "rows": [asdict(r) for r in rows]}
    paths = write_result(out, "quality", result, lambda path: plot(rows, path))
    log("\n" + written(paths))
    return result


def row_line(r) -> str:
    """One row of the table: a method at one code length."""
    rep = r.report
    return (
        f"{r.method:<6} {r.bits:>4} {rep['map_all']:>8.3f} {rep['map_at_k']:>9.3f} {rep['precision_at_100']:>6.3f} "
        f"{rep['precision_at_radius']:>6.3f} {rep['empty_ball_fraction']:>6.2f} "
        f"{r.bits_on[0]:>4.2f}-{r.bits_on[1]:.2f} {r.fit_s:>7.1f} {r.eval_s:>6.2f}"
    )


def ratios(rows) -> list[str]:
    """Each method's mAP@all and P@100 relative to PCA-ITQ's at the same code length."""
    itq = {r.bits: r.report for r in rows if r.method == "itq"}
    return [
        f"{r.method:<6} {r.bits:>3} bits: mAP {_ratio(r.report, itq[r.bits], 'map_all')} PCA-ITQ's, "
        f"P@100 {_ratio(r.report, itq[r.bits], 'precision_at_100')}"
        for r in rows
        if r.bits in itq
    ]


def _ratio(ours: dict, theirs: dict, key: str) -> str:
    return f"{ours[key] / theirs[key]:.2f}x" if theirs[key] > 0 else "n/a"


def plot(rows, path: Path) -> None:
    """mAP@all vs code length; each method's precision-recall curve at 32 bits (else its middle length)."""
    plt = pyplot()
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
    save_figure(fig, path)
