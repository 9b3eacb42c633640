"""The `semhash` command. Thin: each command parses, calls one library function, prints.

Errors a user can act on (SemhashError) and bad files print one line on stderr and exit 1;
Ctrl-C exits 130. No tracebacks.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import typer

from ..hashing import inputs
from ..hashing.errors import (
    CheckpointMismatch,
    CodesCollapsed,
    DataMissing,
    Interrupted,
    ModelMissing,
    NeedsResume,
    NoInput,
    NoQuery,
    NotImages,
    OutputExists,
    SemhashError,
    SkippedItems,
    translate,
)
from ..hashing.safe_text import visible
from .bench import bench_app
from .options import (
    BottleneckName,
    DataRoot,
    DatasetOpt,
    Device,
    LabelsOpt,
    Limit,
    LogLevel,
    Method,
    Split,
    one_source,
    split_option,
    with_queries,
    with_sources,
)
from .output import Format, FormatOption, chosen, print_hits, print_rows
from .stdin import with_stdin_lines

app = typer.Typer(
    help="semhash: semantic hashing retrieval (binary codes, Hamming-ball search).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")
index_app = typer.Typer(
    help="Build and maintain indexes (INDEX: a SQLite path or a database URL).", no_args_is_help=True
)
app.add_typer(index_app, name="index")


def _version(value: bool) -> None:
    if value:
        from ..hashing import __version__

        typer.echo(f"semhash {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool | None = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """semhash: semantic hashing retrieval."""


@data_app.command("info")
def data_info(
    name: str = typer.Argument(..., help="mnist, fashion-mnist, cifar10, digits, an image folder or a .npy/.npz file."),
    split: Split = split_option(Split.train),
    data_root: str | None = DataRoot,
    no_download: bool = typer.Option(False, "--no-download", help="Never download; use local files only."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Size, item shape, classes and origin of a data set."""
    from ..hashing.data import load_dataset
    from ..hashing.dataset import describe

    info = describe(load_dataset(name, split=split.value, root=data_root, download=not no_download))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value)) if value else "-"
        typer.echo(f"{key:>14}: {value}")


@data_app.command("export")
def data_export(
    name: str = typer.Argument(..., help="A data set: mnist, fashion-mnist, cifar10, digits, or a path."),
    item: int = typer.Option(0, help="Row of the item in its split."),
    split: Split = split_option(Split.test),
    output: Path = typer.Option(..., "-o", "--output", help="File to write (a PNG for images, .npy for vectors)."),
    data_root: str | None = DataRoot,
) -> None:
    """Write one item of a data set as a file a query reads back: a PNG for an image, a .npy for a
    vector (to search with, for instance)."""
    from ..hashing.data import load_dataset

    ds = load_dataset(name, split=split.value, root=data_root)
    label = "" if ds.labels is None else f" (label {int(ds.labels[item])})" if 0 <= item < len(ds) else ""
    typer.echo(f"wrote {inputs.get(ds.kind).save_item(ds, item, output)}{label}")


@app.command()
@with_sources
def train(
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the .semhash model."),
    dataset: str | None = DatasetOpt,
    labels: Path | None = LabelsOpt,
    bits: int = typer.Option(32, help="Code length: 8 to 256, a multiple of 8."),
    method: Method = typer.Option(
        Method.ae, help="ae (autoencoder), itq, pcah, lsh, or auto (ae and itq: the better)."
    ),
    bottleneck: BottleneckName = typer.Option(BottleneckName.noise, help="ae: how the bottleneck is made binary."),
    steps: int | None = typer.Option(None, help="ae: optimizer steps (default: the recipe's 11,000)."),
    epochs: int | None = typer.Option(None, help="ae: passes over the data instead of --steps."),
    device: str = Device,
    neighbours: float | None = typer.Option(None, help="ae: weight of the k-NN graph term (0 turns it off)."),
    views: float | None = typer.Option(None, help="ae, images: strength of the random affine views (0: off)."),
    conv: bool = typer.Option(False, "--conv", help="ae: convolutional encoder/decoder."),
    checkpoint: Path | None = typer.Option(None, help="ae: checkpoint file, written every validation round."),
    resume: bool = typer.Option(False, "--resume", help="ae: continue from --checkpoint."),
    nproc: int = typer.Option(1, "--nproc", help="ae: training processes (DDP; on CUDA, one GPU each)."),
    limit: int | None = Limit,
    seed: int = typer.Option(0, help="Random seed."),
    data_root: str | None = DataRoot,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    sources: dict | None = None,
) -> None:
    """Train a hasher on a data set (its train split) and save it as a self-describing .semhash model."""
    from ..hashing.methods import train_model

    source = one_source(dataset, sources)
    options = {}
    if method in (Method.ae, Method.auto):
        reg = {"neighbours": neighbours, "affine": views}
        options = _ae_options(bottleneck.value, steps, epochs, device, reg, conv, checkpoint, resume, nproc, as_json)
    # the autoencoder draws its own progress bar; the other fits get a spinner (terminals only)
    spinner = _spinner(f"fitting {method.value}", not as_json and method not in (Method.ae, Method.auto))
    with warnings.catch_warnings(), spinner:  # a collapse is reported once, below, not also as a Python warning
        warnings.simplefilter("ignore", CodesCollapsed)
        summary = train_model(
            method.value,
            source,
            output,
            bits=bits,
            seed=seed,
            limit=_limit(limit, 2),
            data_root=data_root,
            labels=labels,
            **options,
        )
    _print_trained(summary, as_json)


def _print_trained(summary: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"trained {summary['method']} with {summary['bits']}-bit codes on {summary['items']:,} items of "
        f"{summary['dataset']} in {summary['seconds']:.1f} s"
    )
    for name, key in (("autoencoder", "validation"), ("PCA-ITQ", "itq_validation")):
        v = summary.get(key) or {}
        if "score" in v:
            typer.echo(
                f"validation of {name} ({v['criterion']} criterion): mAP {v['score']:.3f}, "
                f"precision within radius 2 {v['precision_at_radius2']:.3f}"
            )
    if "verdict" in summary:
        typer.echo(summary["verdict"])
    for warning in summary.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"wrote {summary['model']}")


def _ae_options(bottleneck, steps, epochs, device, reg: dict, conv, checkpoint, resume, nproc, quiet: bool) -> dict:
    """The autoencoder's options (hashing.autoencoder.config.TrainConfig's fields) from train's flags (reg: the
    regularizers' fields given, None where not)."""
    options = {
        "bottleneck": bottleneck,
        "device": device,
        "conv": conv,
        "progress": not quiet,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "resume": resume,
        "nproc": nproc,
    }
    options.update({k: v for k, v in (("steps", steps), ("epochs", epochs)) if v is not None})
    reg = {k: v for k, v in reg.items() if v is not None}
    if reg:
        from ..hashing.autoencoder.config import TrainConfig

        options["reg"] = {**TrainConfig().reg.to_dict(), **reg}
    return options


IndexName = typer.Option("default", "--name", help="Index name inside the database.")
Strict = typer.Option(False, "--strict", help="Fail on the first unreadable file instead of leaving it out.")
BatchSize = typer.Option(
    None, help="Items per transaction (default: 20,000): each committed batch survives a crash.", show_default=False
)


def _batch(size: int | None) -> dict:
    """build_index's batch_size option: the library's default unless given."""
    if size is not None and size < 1:
        raise SemhashError(f"--batch-size must be positive, got {size}")
    return {} if size is None else {"batch_size": size}


def _limit(limit: int | None, least: int = 1) -> int | None:
    if limit is not None and limit < least:
        raise SemhashError(f"--limit must be {'positive' if least == 1 else f'at least {least}'}, got {limit}")
    return limit


@index_app.command("build")
@with_sources
def index_build(
    index: str = typer.Argument(..., help="SQLite file or database URL."),
    model: Path = typer.Option(..., help="The .semhash model that encodes the items."),
    dataset: str | None = DatasetOpt,
    labels: Path | None = LabelsOpt,
    split: Split = split_option(Split.train),
    limit: int | None = Limit,
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted build."),
    strict: bool = Strict,
    batch_size: int | None = BatchSize,
    name: str = IndexName,
    data_root: str | None = DataRoot,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    sources: dict | None = None,
) -> None:
    """Encode a data set with a model and store items and codes in an index."""
    source, data = _data(dataset, sources, labels, split, limit, data_root)
    _fill(
        index, model, source, data, "indexing", as_json, name=name, resume=resume, strict=strict, **_batch(batch_size)
    )


@index_app.command("add")
@with_sources
def index_add(
    index: str = typer.Argument(..., help="SQLite file or database URL."),
    dataset: str | None = DatasetOpt,
    labels: Path | None = LabelsOpt,
    split: Split = split_option(Split.train),
    limit: int | None = Limit,
    model: Path | None = typer.Option(None, help="Default: the index's own model."),
    strict: bool = Strict,
    batch_size: int | None = BatchSize,
    name: str = IndexName,
    data_root: str | None = DataRoot,
    as_json: bool = typer.Option(False, "--json"),
    sources: dict | None = None,
) -> None:
    """Add items to an existing index (keys already there are an error)."""
    source, data = _data(dataset, sources, labels, split, limit, data_root)
    _fill(index, model, source, data, "adding", as_json, name=name, adding=True, strict=strict, **_batch(batch_size))


def _data(dataset, sources: dict, labels, split: Split, limit, data_root) -> tuple[str, dict]:
    """index build / add: the one data source, and build_index's options for reading it."""
    source = one_source(dataset, sources)
    return source, {"split": split.value, "root": data_root, "labels": labels, "limit": _limit(limit)}


def _fill(index: str, model, source: str, data: dict, what: str, as_json: bool, **options) -> None:
    """index build / add: one build_index call behind a progress bar, then the index's info."""
    from ..index_store.build import build_index

    with _working(what, not as_json) as advance:
        idx = build_index(index, model, source, progress=advance, **options, **data)
    _print_info(idx.info(), as_json)


@contextmanager
def _working(what: str, enabled: bool):
    """A progress bar for work on items, then a line on stderr for each file it left out."""
    with _bar(what, enabled) as advance, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedItems)
        yield advance
    for w in caught:
        typer.echo(f"warning: {visible(str(w.message))}", err=True)


@index_app.command("sync")
@with_sources
def index_sync(
    index: str = typer.Argument(..., help="SQLite file or database URL."),
    labels: Path | None = LabelsOpt,
    strict: bool = Strict,
    name: str = IndexName,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    sources: dict | None = None,
) -> None:
    """Make an index hold exactly a folder's or a file's items: add the new, remove the gone,
    re-encode the changed (with the index's model)."""
    from ..index_store.sync import sync_index

    source = one_source(None, sources)
    with _working("syncing", not as_json) as advance:
        done = sync_index(index, source, name, progress=advance, strict=strict, labels=labels)
    if as_json:
        typer.echo(json.dumps(done))
        return
    typer.echo(", ".join(f"{done[k]:,} {k}" for k in ("added", "removed", "changed", "unchanged", "skipped")))


@index_app.command("remove")
def index_remove(
    index: str = typer.Argument(...),
    keys: list[str] = typer.Argument(..., help="Item keys."),
    name: str = IndexName,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Remove items by key (all or nothing)."""
    from ..index_store.index import Index

    removed = Index.open(index, name).remove(keys)
    typer.echo(json.dumps({"removed": len(removed)}) if as_json else f"removed {len(removed)} item(s)")


@index_app.command("info")
def index_info(
    index: str = typer.Argument(...), name: str = IndexName, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Size, code length, model, memory and cache state of an index."""
    from ..index_store.index import Index

    _print_info(Index.open(index, name, mode="read").info(), as_json)


@index_app.command("verify")
def index_verify(
    index: str = typer.Argument(...), name: str = IndexName, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Check the derived structures against SQL, rebuilding them if they differ."""
    from ..index_store.index import Index

    _print_info(Index.open(index, name, mode="read").verify(), as_json)


@index_app.command("list")
def index_list(
    index: str = typer.Argument(..., help="SQLite file or database URL."), fmt: Format | None = FormatOption
) -> None:
    """The indexes in a store: name, code length, items, generation, last change, model."""
    from ..index_store.catalog import list_indexes

    columns = ("name", "bits", "items", "generation", "updated", "model")
    print_rows(list_indexes(index), chosen(fmt, False), columns)


@index_app.command("drop")
def index_drop(
    index: str = typer.Argument(...),
    name: str = IndexName,
    yes: bool = typer.Option(False, "--yes", help="Really delete the index, its items and codes."),
) -> None:
    """Delete an index from the store, with its derived structures."""
    from ..index_store.catalog import drop_index

    if not yes:
        raise SemhashError(f"dropping index {name!r} deletes its items and codes: pass --yes to do it")
    done = drop_index(index, name)
    typer.echo(f"dropped index {done['dropped']!r} ({done['items']:,} items)")


@index_app.command("export")
def index_export(
    index: str = typer.Argument(...),
    output: Path = typer.Option(
        ..., "-o", "--output", help="A .jsonl, .csv, .npz, .npy or .parquet file; - for standard output."
    ),
    name: str = IndexName,
    fmt: str | None = typer.Option(
        None, "--format", help="jsonl, csv, npz, npy or parquet (default: the file's suffix; jsonl on standard output)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace the file if there is one."),
) -> None:
    """Write an index's items (key, id, label, class, code, source, metadata) to a file."""
    from ..index_store.export import export_index

    if str(output) == "-":
        export_index(index, name, sys.stdout, fmt=fmt)  # the items alone on standard output
        return
    done = export_index(index, name, output, fmt=fmt, overwrite=force)
    typer.echo(f"wrote {done['items']:,} items of {done['bits']}-bit codes to {done['path']}")


@app.command()
@with_queries
def encode(
    model: Path = typer.Option(..., help="The .semhash model that makes the codes."),
    dataset: str | None = typer.Option(None, help="Rows of a data set (the first one unless --limit)."),
    split: Split = split_option(Split.test),
    limit: int | None = Limit,
    output: Path | None = typer.Option(None, "-o", "--output", help="Also write the codes as .npy (n, bits/8) uint8."),
    data_root: str | None = DataRoot,
    fmt: Format | None = FormatOption,
    queries: dict | None = None,
) -> None:
    """The binary codes a model gives inputs of any kind (images, vectors, ...) or a data set's rows:
    hex (FAISS bit order)."""
    from ..index_store.query import encode as make_codes

    labels, codes = make_codes(model, dataset=dataset, split=split.value, limit=limit, data_root=data_root, **queries)
    if output is not None:
        _save_npy(output, codes)
    rows = [{"input": q, "code": c.tobytes().hex()} for q, c in zip(labels, codes)]
    print_rows(rows, chosen(fmt, False), ("input", "code"), f"{codes.shape[1] * 8}-bit codes")


def _save_npy(path: Path, array) -> None:
    import numpy as np

    from ..hashing.files import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    atomic_write(path, write)


@app.command()
def dedup(
    index: str = typer.Argument(..., help="SQLite file or database URL, or a folder of images (with --model)."),
    radius: int = typer.Option(0, help="Items within this Hamming distance of each other are near-duplicates."),
    model: Path | None = typer.Option(None, help="With a folder: the model that encodes its images."),
    name: str = IndexName,
    fmt: Format | None = FormatOption,
) -> None:
    """Groups of near-duplicate items of an index or a folder: linked by codes within the radius, largest first."""
    from ..index_store.dedup import dedup as find_groups

    result = find_groups(index, name, radius, model=model)
    fmt = chosen(fmt, False)
    if fmt is Format.json:
        typer.echo(json.dumps(result, indent=1))
        return
    rows = [{"group": g, "size": len(keys), "key": k} for g, keys in enumerate(result["groups"], 1) for k in keys]
    print_rows(rows, fmt, ("group", "size", "key"), f"{len(result['groups'])} group(s) within radius {radius}")


@app.command()
@with_queries
def search(
    index: str = typer.Argument(..., help="SQLite file or database URL."),
    item: list[str] | None = typer.Option(None, help="Query with stored items, by key; - reads one key a line."),
    code: list[str] | None = typer.Option(
        None, help="Query with raw codes in hex (FAISS bit order); - reads one code a line."
    ),
    dataset: str | None = typer.Option(None, help="Query with items of a data set (the first one unless --limit)."),
    split: Split = split_option(Split.test),
    limit: int | None = Limit,
    k: int | None = typer.Option(
        None, "-k", "--k", help="At most this many hits per query (default 10 without --radius)."
    ),
    radius: int | None = typer.Option(None, help="Every item within this Hamming distance (capped by -k when given)."),
    model: Path | None = typer.Option(None, help="Default: the index's own model."),
    show: Path | None = typer.Option(None, help="Write the queries and neighbours as an image grid (PNG)."),
    source_root: Path | None = typer.Option(
        None, help="Where the indexed image folder is now (default: where it was built, else beside the index)."
    ),
    name: str = IndexName,
    data_root: str | None = DataRoot,
    fmt: Format | None = FormatOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (as --format json)."),
    queries: dict | None = None,
) -> None:
    """Nearest items by Hamming distance (Hamming-ball lookup, exact k-NN behind it)."""
    from ..index_store.query import search as run_search

    result = run_search(
        index,
        name,
        items=with_stdin_lines(item, "--item") or None,
        codes=with_stdin_lines(code, "--code", strip=True) or None,
        dataset=dataset,
        split=split.value,
        limit=limit,
        k=k,
        radius=radius,
        model=model,
        data_root=data_root,
        show=show,
        source_root=source_root,
        **queries,
    )
    fmt = chosen(fmt, as_json)
    print_hits(result, fmt)
    if show and fmt is Format.table:
        typer.echo(f"wrote {result['grid']}")


@app.command()
def serve(
    index: str = typer.Argument(
        ...,
        envvar="SEMHASH_INDEX",
        show_envvar=True,
        help="SQLite file or database URL (a URL with a password: set $SEMHASH_INDEX, kept out of ps).",
    ),
    name: list[str] | None = typer.Option(None, "--name", help="Indexes to serve (repeat; default: all in the store)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; beyond loopback, writes need a token."),
    port: int = typer.Option(8000),
    token_file: Path | None = typer.Option(
        None, help="A file holding the token writes must present (default: $SEMHASH_TOKEN)."
    ),
    workers: int = typer.Option(1, help="Server processes (uvicorn workers)."),
    data_root: str | None = DataRoot,
    log_level: LogLevel = typer.Option(LogLevel.info, help="uvicorn's log level."),
) -> None:
    """Serve indexes over HTTP: a JSON API (OpenAPI at /docs) and a browse page at /."""
    from ..index_store.http.launcher import read_token
    from ..index_store.http.launcher import serve as run_server

    if workers < 1 or not 0 <= port < 65536:
        raise SemhashError(f"--workers must be positive and --port within 0-65535, got {workers} and {port}")
    token = read_token(token_file) if token_file else None  # bounded: --token-file /dev/zero is refused
    run_server(index, name or None, host, port, workers, data_root, log_level.value, token)


def _print_info(info: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    for key, value in info.items():
        typer.echo(f"{key:>24}: {_pretty(key, value)}")


def _pretty(key: str, value) -> str:
    """A figure for people: thousands separated, bytes in KB/MB/GB, floats to a sensible precision."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, (int, float)) and "bytes" in key:
        size, unit = float(value), "B"
        for unit in ("B", "KB", "MB", "GB", "TB"):
            if size < 1000 or unit == "TB":
                break
            size /= 1000
        return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_pretty(key, v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_pretty(k, v)}" for k, v in value.items()) or "-"
    return visible(str(value))  # names and paths a user chose: shown, never obeyed by the terminal


def _spinner(what: str, enabled: bool):
    """A spinner on a terminal's stderr while work without steps runs (a PCA, an ITQ fit)."""
    from contextlib import nullcontext

    from rich.console import Console

    console = Console(stderr=True)
    return console.status(what) if enabled and console.is_terminal else nullcontext()


class _bar:
    """A rich progress bar driven by progress(done, total) callbacks."""

    def __init__(self, what: str, enabled: bool):
        from rich.console import Console
        from rich.progress import Progress

        console = Console(stderr=True)
        # on a terminal only, and erased when done: piped, stdout carries the result alone and
        # stderr the one error line
        self.progress = Progress(console=console, disable=not enabled or not console.is_terminal, transient=True)
        self.task = self.progress.add_task(what, total=None)

    def __enter__(self):
        self.progress.__enter__()

        def advance(done: int, total: int, stage: str | None = None) -> None:
            update = {"description": stage} if stage else {}
            self.progress.update(self.task, completed=done, total=total, **update)

        return advance

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)


# What to do about each kind of error, in this command's flags: the library's messages name none.
HINTS = {
    NeedsResume: "use --resume",
    ModelMissing: "pass --model",
    NotImages: "query it with --vector",
    NoQuery: f"use one of {', '.join(k.flag for k in inputs.kinds())}, --item, --code or --dataset",
    NoInput: f"use one of {', '.join(k.flag for k in inputs.kinds())} or --dataset",
    DataMissing: "or pass --data-root",
    CheckpointMismatch: "start afresh without --resume",
    OutputExists: "pass --force to replace it",
}


def main() -> None:
    """Console entry point: run the app; every error goes through hashing.errors.translate and
    comes out as one line on stderr and a non-zero exit (130 for Ctrl-C, 2 for a usage error)."""
    try:  # typer >= 0.24 carries its own copy of click; before, click itself
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:
        from click.exceptions import ClickException, NoArgsIsHelpError

    try:
        code = app(standalone_mode=False)  # usage errors come back here, not as a framed box
        sys.stdout.flush()  # a reader that left fails this here, not Python's flush at exit
    except BrokenPipeError:
        _reader_left()
    except SystemExit as exc:  # click and rich turn a closed pipe into exit 1, the error its context
        if isinstance(exc.__context__, BrokenPipeError):
            _reader_left()
        raise
    except NoArgsIsHelpError as exc:
        typer.echo(exc.format_message())
        sys.exit(2)
    except ClickException as exc:
        # one line; pydantic's "Value error, " prefix says nothing to a user
        _fail(" ".join(exc.format_message().replace("Value error, ", "").split()), exc.exit_code)
    except typer.Abort:
        _fail("interrupted", 130)
    except BaseException as exc:  # noqa: B036  (KeyboardInterrupt included: one line, exit 130)
        err = translate(exc)
        if err is None:
            raise
        hint = next((flag for cls, flag in HINTS.items() if isinstance(err, cls)), None)
        _fail(f"{err}; {hint}" if hint else str(err), 130 if isinstance(err, Interrupted) else 1)
    if code == 130:  # typer turns Ctrl-C into a silent exit 130
        _fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {visible(message)}", err=True)  # a key in a message shows, never acts
    sys.exit(code)


def _reader_left() -> None:
    """Standard output's reader left (`semhash search ... | head -1`): end quietly with exit 0, as
    a pipeline expects. Python flushes standard output at exit: pointed at devnull, that flush
    cannot fail again (the recipe of the documentation of Python's signal module)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


if __name__ == "__main__":
    main()
