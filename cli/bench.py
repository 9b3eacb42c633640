"""`semhash bench`: the one entry point of every benchmark. Each command checks its options, calls
its benchmark's run() and prints run's table, or with --json the result run returns (also written
as <name>.json beside <name>.png in --out, by default ./semhash-results)."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import typer

from ..benchmarks.results import DEFAULT_OUT
from ..hashing.errors import SemhashError
from .options import BottleneckName, DataRoot, one_source, with_sources

bench_app = typer.Typer(help="Benchmarks: tables, JSON and PNG plots.", no_args_is_help=True)

AsJson = typer.Option(False, "--json", help="Print the result as JSON instead of the table.")


def _out(name: str):
    """The --out option: the same default folder for every benchmark, in the current folder."""
    return typer.Option(DEFAULT_OUT, help=f"Folder for {name}.json and {name}.png (default: ./{DEFAULT_OUT}).")


def _run(as_json: bool, run: Callable[[Callable[[str], None]], dict]) -> None:
    """run(log) prints its table through log and returns the results; --json prints those instead."""
    result = run((lambda line: None) if as_json else typer.echo)
    if as_json:
        typer.echo(json.dumps(result, indent=1))


@bench_app.command("quality")
@with_sources
def bench_quality(
    dataset: str | None = typer.Option(
        None,
        help="A named set (default: mnist). Labelled data without a test split (--texts, --images, "
        "--features) gives up --queries random items as the queries.",
    ),
    bits: list[int] = typer.Option([16, 32, 64], help="Code lengths (repeat the option)."),
    method: list[str] = typer.Option(["ae", "itq", "pcah", "lsh"], help="Methods (repeat the option)."),
    queries: int = typer.Option(1000),
    ae_epochs: int | None = typer.Option(None, help="Epochs of the autoencoder (default: semhash train's)."),
    ae_neighbours: float | None = typer.Option(None, help="Weight of the AE's k-NN graph term (0: off)."),
    ae_bottleneck: BottleneckName | None = typer.Option(None, help="The AE's bottleneck."),
    ae_members: int | None = typer.Option(None, help="AE models trained apart, kept as one (texts: 2, else 1)."),
    device: str = typer.Option("auto", help="Device for the autoencoder: auto, cpu, cuda, ..."),
    limit: int | None = typer.Option(None, help="Database of the first N training items."),
    out: Path = _out("quality"),
    data_root: str | None = DataRoot,
    as_json: bool = AsJson,
    **sources,
) -> None:
    """Retrieval quality of the autoencoder and the baselines, side by side (the MNIST protocol)."""
    from ..benchmarks.bench_quality import run

    if dataset is None and all(v is None for v in sources.values()):
        dataset = "mnist"
    dataset = one_source(dataset, sources)
    if queries < 1:
        raise SemhashError(f"--queries must be positive, got {queries}")
    ae_options = {"device": device, **({"epochs": ae_epochs} if ae_epochs else {})}
    if ae_bottleneck:
        ae_options["bottleneck"] = ae_bottleneck.value
    if ae_members is not None:
        ae_options["members"] = ae_members
    if ae_neighbours is not None:  # the input kind's recipe (AEHasher.train_config), this weight
        ae_options["reg"] = {"neighbours": ae_neighbours}
    _run(
        as_json,
        lambda log: run(dataset, tuple(bits), tuple(method), queries, ae_options, limit, data_root, out, log=log),
    )


@bench_app.command("search")
def bench_search(
    quick: bool = typer.Option(False, "--quick", help="100,000 items, scaling up to 1M (default: 1M, up to 10M)."),
    n: int | None = typer.Option(
        None, "--n", help="Database size for the speed and bulk figures (scaling stops there too)."
    ),
    ae_model: Path | None = typer.Option(
        None, help="A .semhash model (at most 64 bits): also search its MNIST codes, and --n of them with augmentation."
    ),
    mnist: bool = typer.Option(True, help="Scale on real MNIST codes (PCA-ITQ's) too."),
    approx: bool = typer.Option(
        True, help="k-NN 10 also against approximate peers (USearch HNSW, FAISS HNSW and IVF) with their recall@10."
    ),
    postgres: str | None = typer.Option(
        None,
        "--postgres",
        metavar="URL",
        help="Also bulk add into PostgreSQL (beside a raw COPY), in fresh schemas of this database, dropped after.",
    ),
    out: Path = _out("search"),
    data_root: str | None = DataRoot,
    as_json: bool = AsJson,
) -> None:
    """Search speed against FAISS's binary indexes and approximate peers, one thread: radius, k-NN
    (recall@10 too), scaling, bulk add beside the raw driver."""
    from ..benchmarks.bench_search import run

    if ae_model is not None and not ae_model.is_file():
        raise SemhashError(f"{ae_model}: no such model file")
    size, sizes = (
        (100_000, (10_000, 100_000, 1_000_000)) if quick else (1_000_000, (10_000, 100_000, 1_000_000, 10_000_000))
    )
    if n is not None:
        size, sizes = n, tuple(s for s in sizes if s < n) + (n,)
    model = str(ae_model) if ae_model else None
    _run(
        as_json,
        lambda log: run(size, sizes, model, mnist, data_root, out, log=log, approx=approx, postgres=postgres),
    )


@bench_app.command("train")
def bench_train(
    dataset: str = typer.Option("mnist"),
    bits: int = typer.Option(32),
    method: list[str] = typer.Option(["lsh", "pcah", "itq", "ae"], help="Methods (repeat the option)."),
    ae_epochs: int = typer.Option(3, help="Epochs of the autoencoder to time."),
    device: str = typer.Option("auto", help="auto (cuda, then mps, then cpu), cpu, cuda, ..."),
    limit: int | None = typer.Option(None, help="Train on the first N items only."),
    nproc: list[int] = typer.Option(
        [1],
        "--nproc",
        help="Autoencoder training processes to time, DistributedDataParallel (repeat: --nproc 1 --nproc 2).",
    ),
    out: Path = _out("train"),
    data_root: str | None = DataRoot,
    as_json: bool = AsJson,
) -> None:
    """Training and encoding speed of the autoencoder and the baselines, on the same data; with
    several --nproc, the autoencoder's samples/s in each process count side by side."""
    from ..benchmarks.bench_train import run

    if limit is not None and limit < 10:
        raise SemhashError(f"--limit must be at least 10, got {limit}")
    if ae_epochs < 1:
        raise SemhashError(f"--ae-epochs must be at least 1, got {ae_epochs}")
    if any(n < 1 for n in nproc):
        raise SemhashError(f"--nproc must be at least 1, got {nproc}")
    _run(
        as_json,
        lambda log: run(
            dataset,
            bits,
            tuple(method),
            ae_epochs,
            device,
            limit,
            data_root,
            out,
            log=log,
            progress=not as_json,
            nproc=tuple(nproc),
        ),
    )


@bench_app.command("serve")
def bench_serve(
    items: int = typer.Option(1_000_000, help="Random 32-bit codes in the index."),
    clients: int = typer.Option(32, help="Concurrent HTTP clients."),
    seconds: float = typer.Option(30.0, help="Duration of each load run."),
    workers: list[int] = typer.Option(
        [1, 2], help="Worker counts of one server on a SQLite index to measure (repeat the option; 0: none)."
    ),
    postgres: str | None = typer.Option(
        None,
        "--postgres",
        "--store",
        metavar="URL",
        help="Also serve the same index from PostgreSQL (a fresh schema of this database, dropped after).",
    ),
    replicas: list[int] = typer.Option(
        [1, 2], help="With --postgres: server processes sharing that store to measure (repeat the option)."
    ),
    out: Path = _out("serve"),
    as_json: bool = AsJson,
) -> None:
    """The HTTP service under load (k-NN by raw code), beside the same searches in-process; with
    --postgres, also 1 and 2 server processes sharing one PostgreSQL store. Fails if any request did."""
    from ..benchmarks.bench_serve import run

    counts = tuple(w for w in workers if w != 0)
    _run(
        as_json,
        lambda log: run(items, clients, seconds, counts, out, log=log, postgres=postgres, replicas=tuple(replicas)),
    )


@bench_app.command("hostile")
def bench_hostile(
    items: int = typer.Option(100_000, help="Random 32-bit codes in the served index."),
    clients: int = typer.Option(4, help="Well-behaved clients searching meanwhile."),
    out: Path = _out("hostile"),
    as_json: bool = AsJson,
) -> None:
    """Hostile uploads and bodies, and thumbnails of huge images, against `semhash serve`: time to
    the answer, server memory, and the other clients' p99 meanwhile; then `search --show`'s peak
    memory over the same images."""
    from ..benchmarks.bench_hostile import run

    if items < 1000 or clients < 1:
        raise SemhashError(f"need at least 1,000 items and 1 client, got {items} and {clients}")
    _run(as_json, lambda log: run(items, clients, out, log=log))


@bench_app.command("photos")
def bench_photos(
    n: int = typer.Option(20_000, "--n", help="Photos in the generated folder (2000x1500 and 4000x3000 JPEGs, ...)."),
    out: Path = _out("photos"),
    as_json: bool = AsJson,
) -> None:
    """A camera roll into an index (a 28x28 grey and a 64x64 RGB model): throughput against a bare
    PIL loop on the same cores, peak memory, the corrupt files named."""
    from ..benchmarks.bench_photos import run

    if n < 1:
        raise SemhashError(f"need at least 1 photo, got {n}")
    _run(as_json, lambda log: run(n, out, log=log))


@bench_app.command("embeddings")
def bench_embeddings(
    n: int = typer.Option(1_000_000, "--n", help="Vectors, in 10 .npy shards with keys.txt and meta.jsonl."),
    dims: int = typer.Option(768, help="Dimensions of each vector."),
    out: Path = _out("embeddings"),
    as_json: bool = AsJson,
) -> None:
    """Your own embeddings into an index (PCA-ITQ, 64 bits): end-to-end time and peak memory, beside
    reading the same shards with numpy alone."""
    from ..benchmarks.bench_embeddings import run

    if n < 1000 or dims < 64:
        raise SemhashError(f"need at least 1,000 vectors of at least 64 dimensions, got {n} x {dims}")
    _run(as_json, lambda log: run(n, dims, out=out, log=log))


@bench_app.command("reconstruction")
def bench_reconstruction(
    epochs: int = typer.Option(45, help="Epochs of the deep autoencoder."),
    dims: int = typer.Option(30, help="Bottleneck width of the autoencoder and PCA components."),
    device: str = typer.Option("auto", help="auto (cuda, then mps, then cpu), cpu, cuda, ..."),
    out: Path = _out("reconstruction"),
    data_root: str | None = DataRoot,
    as_json: bool = AsJson,
) -> None:
    """Reconstruction error on MNIST's test set: a deep autoencoder against PCA (Hinton & Salakhutdinov 2006)."""
    from ..benchmarks.bench_reconstruction import run

    _run(as_json, lambda log: run(epochs, dims, device, data_root, out, log=log, progress=not as_json))


@bench_app.command("explore")
def bench_explore(
    bits: int = typer.Option(32),
    epochs: int = typer.Option(30),
    neighbours: float = typer.Option(40.0, help="Weight of the k-NN graph term (0: off)."),
    k: int = typer.Option(50, "--k", help="Neighbours per item in the k-NN graph."),
    pool: int = typer.Option(
        2, help="Graphs without views: the k of each item's pool*k nearest sharing most neighbours."
    ),
    graph_views: int = typer.Option(4, help="Images with views: the graph is searched among this many views of each."),
    bottleneck: str = typer.Option("noise", help="noise, ste, bernoulli or real."),
    noise_std: float = typer.Option(4.0, help="Standard deviation of the noise bottleneck's noise."),
    mask: float = typer.Option(0.0, help="Denoising: input masking probability."),
    threads: int | None = typer.Option(None, help="Torch threads (default: torch's)."),
    affine: float = typer.Option(1.0, help="Random affine views of the training images (1: MNIST's standard; 0: off)."),
    self_pairs: float = typer.Option(0.0, help="Share of items paired with a second view of themselves."),
    lr_decay: str = typer.Option("none", help="Learning-rate decay: none or cosine."),
    temperature: float = typer.Option(0.0, help="Pairs' term: InfoNCE at this temperature (0: spectral)."),
    out: Path = _out("explore"),
    data_root: str | None = DataRoot,
    as_json: bool = AsJson,
) -> None:
    """One autoencoder configuration, the full MNIST protocol measured after every epoch (a JSON line each)."""
    from ..benchmarks.explore_ae import run
    from ..hashing.autoencoder.regularizers import Regularizers

    reg = Regularizers(
        neighbours=neighbours,
        k_neighbours=k,
        neighbour_pool=pool,
        graph_views=graph_views,
        mask_prob=mask,
        affine=affine,
        self_pairs=self_pairs,
        temperature=temperature,
    )
    options = dict(bottleneck=bottleneck, noise_std=noise_std, threads=threads, lr_decay=lr_decay)
    _run(as_json, lambda log: run(bits, epochs, reg, data_root, out, log=log, **options))


class DedupPart(str, Enum):
    texts = "texts"
    mnist = "mnist"
    photos = "photos"


@bench_app.command("dedup")
def bench_dedup(
    tiny: bool = typer.Option(False, "--tiny", help="A few hundred items a corpus (a check, not figures)."),
    part: list[DedupPart] = typer.Option(
        list(DedupPart), "--part", help="Corpora: texts (20 Newsgroups), mnist, photos (repeat the option)."
    ),
    out: Path = _out("dedup"),
    data_root: str | None = DataRoot,
    as_json: bool = AsJson,
) -> None:
    """Planted near-duplicates (edited texts, transformed images) found by `semhash dedup` and by
    MinHashLSH and imagehash, in one run: pair precision, recall and F1 per transformation, time,
    peak memory."""
    from ..benchmarks.bench_dedup import run

    parts = tuple(p.value for p in part)
    _run(as_json, lambda log: run("tiny" if tiny else "full", parts, data_root, out, log=log))


class ScaleCorpus(str, Enum):
    spread = "spread"
    clustered = "clustered"


@bench_app.command("dedup-scale")
def bench_dedup_scale(
    n: int = typer.Option(1_000_000, "--n", help="Vectors a corpus, a tenth of them planted copies."),
    dims: int = typer.Option(768, help="Dimensions of each vector."),
    corpus: list[ScaleCorpus] = typer.Option(
        list(ScaleCorpus), "--corpus", help="spread (codes spread) or clustered (codes collapse); repeat the option."
    ),
    out: Path = _out("dedup-scale"),
    as_json: bool = AsJson,
) -> None:
    """Near-duplicates among a million embeddings: `semhash dedup` against FAISS's IVF range search,
    time, peak memory, precision and recall of planted copies."""
    from ..benchmarks.bench_dedup_scale import run

    if n < 1000 or dims < 64:
        raise SemhashError(f"need at least 1,000 vectors of at least 64 dimensions (64-bit codes), got {n} x {dims}")
    _run(as_json, lambda log: run(n, dims, tuple(c.value for c in corpus), out, log=log))
