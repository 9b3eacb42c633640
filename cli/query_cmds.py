"""`semhash search`, `encode`, `dedup` and `serve`: each parses, calls one library function, prints."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from ..hashing.errors import (
    SemhashError,
)
from .app import IndexName, app, working
from .options import (
    DataRoot,
    Limit,
    LogLevel,
    Split,
    kind_queries,
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

    queries = kind_queries(queries)
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


class Keep(str, Enum):  # the keep rules of index_store/duplicates/groups.py
    first = "first"
    oldest = "oldest"
    largest = "largest"


@app.command()
def dedup(
    index: str = typer.Argument(..., help="SQLite file or database URL, or a folder or file of items (with --model)."),
    threshold: float | None = typer.Option(
        None,
        help="Duplicates score at least this, in the items' own units: images' correlation, vectors' cosine, "
        "texts' Jaccard (default: the kind's own, printed).",
    ),
    radius: int | None = typer.Option(
        None, help="Hamming radius of the candidates (default: derived from the threshold on the index's own data)."
    ),
    keep: Keep = typer.Option(
        "first", help="Which item of a group is kept: first (key), oldest (added first), largest (file)."
    ),
    against: str | None = typer.Option(
        None, help="Set B: an index, a folder or a file; only pairs of an item of B and one of INDEX."
    ),
    against_name: str | None = typer.Option(None, help="The index name in --against's store (default: --name)."),
    pairs: bool = typer.Option(False, "--pairs", help="List the verified pairs with their scores instead of groups."),
    model: Path | None = typer.Option(None, help="With a folder or file: the model that encodes its items."),
    name: str = IndexName,
    fmt: Format | None = FormatOption,
) -> None:
    """Near-duplicates: candidates from codes, verified on the items' own signatures; groups whose
    every member is within the threshold of the item kept."""
    from ..index_store.duplicates import find_duplicates

    def announce(line: str) -> None:
        typer.echo(line, err=True)

    with working("finding duplicates", False):  # items left out or unsigned: a warning line each
        result = find_duplicates(
            index, name, threshold, radius, keep.value, against, against_name, model, pairs=pairs, announce=announce
        )
    print_duplicates(result, chosen(fmt, False), pairs)


def print_duplicates(result: dict, fmt: Format, pairs: bool) -> None:
    """find_duplicates' result: json whole; else its pairs, or its groups (jsonl: one a line; table
    and csv: a row an item, kept or removed)."""
    if fmt is Format.json:
        typer.echo(json.dumps(result, indent=1))
        return
    how = f"{result['units']} >= {result['threshold']:g}, " if result["threshold"] is not None else ""
    title = f"within radius {result['radius']} ({how}{result['candidates']:,} candidate pairs)"
    if pairs:
        rows = result["pairs"]
        print_rows(rows, fmt, ("a", "b", "score", "distance"), f"{len(rows)} pair(s) {title}")
    elif fmt is Format.jsonl:
        for g, group in enumerate(result["groups"], 1):
            typer.echo(json.dumps({"group": g, **group}))
    else:
        rows = [
            {"group": g, "action": act, "key": k, "score": sc}
            for g, grp in enumerate(result["groups"], 1)
            for act, k, sc in [
                ("keep", grp["keep"], None),
                *(("remove", k, s) for k, s in zip(grp["remove"], grp["scores"])),
            ]
        ]
        print_rows(rows, fmt, ("group", "action", "key", "score"), f"{len(result['groups'])} group(s) {title}")


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
        **kind_queries(queries),
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
