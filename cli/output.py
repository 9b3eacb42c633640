"""Printing results: a table for people (never cut when piped), JSON, JSON lines or CSV for scripts.

What a user controls (keys, file names, index names) never acts on its reader: a table shows each
string as plain text, never as rich markup, with control characters made visible; every CSV cell
goes through hashing/safe_text.py's CsvWriter (no formulas, CR and LF quoted); JSON escapes by itself."""

from __future__ import annotations

import json
import sys
from enum import Enum

import typer

from ..hashing.safe_text import CsvWriter, visible


class Format(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


FormatOption = typer.Option(None, "--format", help="table (default), json, jsonl (one hit a line) or csv.")
HIT_COLUMNS = ("query", "rank", "key", "label", "class", "distance", "source", "snippet")
OPTIONAL = ("class", "snippet")  # columns shown only when some hit has a value: named labels, texts


def chosen(fmt: Format | None, as_json: bool) -> Format:
    """--format, else json for the older --json, else a table."""
    return fmt or (Format.json if as_json else Format.table)


def print_hits(result: dict, fmt: Format) -> None:
    """Search results: {"queries": [{"query", "hits": [{key, label, distance, source, ...}]}]}."""
    if fmt is Format.json:
        typer.echo(json.dumps(result, indent=1))
        return
    rows = [
        {"query": q["query"], "rank": r, **{c: h.get(c) for c in HIT_COLUMNS[2:]}}
        for q in result["queries"]
        for r, h in enumerate(q["hits"], 1)
    ]
    # a class column only for indexes whose labels have names, a snippet column for texts
    columns = tuple(c for c in HIT_COLUMNS if c not in OPTIONAL or any(row.get(c) for row in rows))
    if fmt is Format.table:
        for q in result["queries"]:
            _table(f"query {q['query']}: {len(q['hits'])} neighbour(s)", columns[2:], q["hits"])
    else:
        print_rows(rows, fmt, columns)


def print_rows(rows: list[dict], fmt: Format, columns: tuple[str, ...], title: str = "") -> None:
    """Flat records in any format (json: a list)."""
    if fmt is Format.json:
        typer.echo(json.dumps(rows, indent=1, default=str))
    elif fmt is Format.jsonl:
        for row in rows:
            typer.echo(json.dumps(row, default=str))
    elif fmt is Format.csv:
        writer = CsvWriter(sys.stdout)
        writer.writerow(columns)
        writer.writerows([row.get(c) for c in columns] for row in rows)
    else:
        _table(title, columns, rows)


def _table(title: str, columns, rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # piped, no terminal width applies: a wide console lays every cell out in full
    console = Console() if sys.stdout.isatty() else Console(width=100_000, soft_wrap=True)
    # Text, never a str: rich would read a str as markup ("[/]" an error, "[link=...]" a link)
    table = Table(title=Text(visible(title)) if title else None, title_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col in ("label", "distance", "rank", "items", "bits") else "left")
    for row in rows:
        table.add_row(*(Text("" if row.get(c) is None else visible(str(row.get(c)))) for c in columns))
    console.print(table)
