"""The `semhash` command's Typer apps, and what its commands share: progress on a terminal, an
index's info for people, the options every index command takes."""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager

import typer

from ..hashing.errors import (
    SemhashError,
    SkippedItems,
)
from ..hashing.safe_text import visible
from .bench import bench_app

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


IndexName = typer.Option("default", "--name", help="Index name inside the database.")
Strict = typer.Option(False, "--strict", help="Fail on the first unreadable file instead of leaving it out.")
BatchSize = typer.Option(
    None, help="Items per transaction (default: 20,000): each committed batch survives a crash.", show_default=False
)


def batch_options(size: int | None) -> dict:
    """build_index's batch_size option: the library's default unless given."""
    if size is not None and size < 1:
        raise SemhashError(f"--batch-size must be positive, got {size}")
    return {} if size is None else {"batch_size": size}


def item_limit(limit: int | None, least: int = 1) -> int | None:
    if limit is not None and limit < least:
        raise SemhashError(f"--limit must be {'positive' if least == 1 else f'at least {least}'}, got {limit}")
    return limit


def print_info(info: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    for key, value in info.items():
        typer.echo(f"{key:>24}: {pretty(key, value)}")


def pretty(key: str, value) -> str:
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
        return ", ".join(pretty(key, v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {pretty(k, v)}" for k, v in value.items()) or "-"
    return visible(str(value))  # names and paths a user chose: shown, never obeyed by the terminal


def spinner(what: str, enabled: bool):
    """A spinner on a terminal's stderr while work without steps runs (a PCA, an ITQ fit)."""
    from contextlib import nullcontext

    from rich.console import Console

    console = Console(stderr=True)
    return console.status(what) if enabled and console.is_terminal else nullcontext()


class ProgressBar:
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


@contextmanager
def working(what: str, enabled: bool):
    """A progress bar for work on items, then a line on stderr for each file it left out."""
    with ProgressBar(what, enabled) as advance, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedItems)
        yield advance
    for w in caught:
        typer.echo(f"warning: {visible(str(w.message))}", err=True)
