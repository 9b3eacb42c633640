"""`semhash index build|add|sync|remove|info|verify|list|drop|export`: each parses, calls one library
function, prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..hashing.errors import (
    SemhashError,
)
from .app import BatchSize, IndexName, Strict, batch_options, index_app, item_limit, print_info, working
from .options import (
    DataRoot,
    DatasetOpt,
    LabelsOpt,
    Limit,
    Split,
    one_source,
    split_option,
    with_sources,
)
from .output import Format, FormatOption, chosen, print_rows


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
    **sources,
) -> None:
    """Encode a data set with a model and store items and codes in an index."""
    source, data = _data(dataset, sources, labels, split, limit, data_root)
    _fill(
        index,
        model,
        source,
        data,
        "indexing",
        as_json,
        name=name,
        resume=resume,
        strict=strict,
        **batch_options(batch_size),
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
    **sources,
) -> None:
    """Add items to an existing index (keys already there are an error)."""
    source, data = _data(dataset, sources, labels, split, limit, data_root)
    _fill(
        index,
        model,
        source,
        data,
        "adding",
        as_json,
        name=name,
        adding=True,
        strict=strict,
        **batch_options(batch_size),
    )


def _data(dataset, sources: dict, labels, split: Split, limit, data_root) -> tuple[str, dict]:
    """index build / add: the one data source, and build_index's options for reading it."""
    source = one_source(dataset, sources)
    return source, {"split": split.value, "root": data_root, "labels": labels, "limit": item_limit(limit)}


def _fill(index: str, model, source: str, data: dict, what: str, as_json: bool, **options) -> None:
    """index build / add: one build_index call behind a progress bar, then the index's info."""
    from ..index_store.build import build_index

    with working(what, not as_json) as advance:
        idx = build_index(index, model, source, progress=advance, **options, **data)
    print_info(idx.info(), as_json)


@index_app.command("sync")
@with_sources
def index_sync(
    index: str = typer.Argument(..., help="SQLite file or database URL."),
    labels: Path | None = LabelsOpt,
    strict: bool = Strict,
    name: str = IndexName,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    **sources,
) -> None:
    """Make an index hold exactly a folder's or a file's items: add the new, remove the gone,
    re-encode the changed (with the index's model)."""
    from ..index_store.sync import sync_index

    source = one_source(None, sources)
    with working("syncing", not as_json) as advance:
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

    print_info(Index.open(index, name, mode="read").info(), as_json)


@index_app.command("verify")
def index_verify(
    index: str = typer.Argument(...), name: str = IndexName, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Check the derived structures against SQL, rebuilding them if they differ."""
    from ..index_store.index import Index

    print_info(Index.open(index, name, mode="read").verify(), as_json)


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
