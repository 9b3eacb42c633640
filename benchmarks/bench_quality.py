"""Retrieval quality of every hasher on the MNIST protocol, side by side in one run.

    python benchmarks/bench_quality.py [--bits 16 32 64] [--methods ae itq pcah lsh] [--out benchmarks/results]

Database = the 60,000 MNIST training images (every hasher is fitted on them), queries = the first
1,000 test images, relevance = same label. Prints a table and each method's mAP@all relative to
PCA-ITQ at the same code length; writes quality.json and quality.png (mAP vs bits; precision-recall
curves over Hamming radii). `semhash bench quality` runs the same.
"""

from __future__ import annotations

import argparse
import sys

from ..hashing import report
from ..hashing.protocol import QualityConfig, run_quality


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--bits", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--methods", nargs="+", default=["ae", "itq", "pcah", "lsh"])
    p.add_argument("--ae-epochs", type=int, default=None, help="epochs of the autoencoder (default: semhash train's)")
    p.add_argument("--ae-neighbours", type=float, default=None, help="weight of the AE's k-NN graph term (0: off)")
    p.add_argument("--ae-bottleneck", default=None, help="noise, ste, bernoulli or real")
    p.add_argument("--device", default="auto", help="device for the autoencoder: auto, cpu, cuda")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    ae_options = {"device": args.device, **({"epochs": args.ae_epochs} if args.ae_epochs else {})}
    if args.ae_bottleneck:
        ae_options["bottleneck"] = args.ae_bottleneck
    if args.ae_neighbours is not None:
        from ..hashing.models import Regularizers

        ae_options["reg"] = Regularizers(neighbours=args.ae_neighbours)
    cfg = QualityConfig(
        dataset=args.dataset,
        bits=tuple(args.bits),
        methods=tuple(args.methods),
        queries=args.queries,
        data_root=args.data_root,
        ae_options=ae_options,
    )
    print(report.HEADER)
    rows = run_quality(cfg, progress=lambda r: print(report.row_line(r), flush=True))
    print("\n" + "\n".join(report.ratios(rows)))
    paths = report.write(rows, cfg, args.out)
    print(f"\nwrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
