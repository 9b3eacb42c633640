"""`semhash search`, `encode`, `dedup` and `serve`: each parses, calls one library function, prints."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..hashing.errors import (
    SemhashError,
)
from .app import IndexName, app
from .options import (
    DataRoot,
    Limit,
    LogLevel,
    Split,
    split_option,
    with_queries,
)
from .output import Format, FormatOption, chosen, print_hits, print_rows
from .stdin import with_stdin_lines


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
    **queries,
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
    **queries,
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
