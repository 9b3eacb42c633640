"""An index's items written out, every stored column, in the format its reader wants.

    export_index("items.db", "default", "items.jsonl")            # {"index", "items", "bits", "format", "path"}
    export_index("items.db", "default", sys.stdout, fmt="csv")    # a text stream: jsonl (default) or csv

Formats, by the file's suffix or `fmt`; an item's source and class are what a search shows
(Index.describe: the source resolved in the image folder, the label's class name):

  jsonl    one object a line: key, id, label, class, code (hex, FAISS bit order), source, meta
  csv      a header, then key, label, code, class, source, meta (JSON text); an empty cell is none.
           Cells go through hashing/safe_text.py's CsvWriter: one starting a formula gains a '
  npz      keys, ids, labels (-1: none), codes (n, bits/8) uint8, classes (the index's class
           names), sources and metas (each the JSON text of a list, an item each, null: none)
  npy      the codes alone, (n, bits/8) uint8
  parquet  key, id, label, class, code (bits/8 bytes), source, meta (JSON text); needs pyarrow,
           which the [parquet] extra installs

A file there already is kept unless overwrite=True, and a missing folder is not made: either is
one error, before the index is read.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..hashing.errors import OutputExists, ParameterError, Unavailable, missing_extra
from ..hashing.files import UMASK
from .index import SEARCH_ATTEMPTS, Index

FORMATS = ("jsonl", "csv", "npz", "npy", "parquet")
STREAMED = ("jsonl", "csv")  # the formats a text stream (standard output) takes


def export_index(target, name: str, path, fmt: str | None = None, overwrite: bool = False) -> dict:
    """Write index `name` of the store at target to path (a file, or a text stream such as
    sys.stdout) in format fmt (default: the file's suffix; jsonl for a stream). overwrite: replace
    a file there already. Returns {"index", "items", "bits", "format", "path"}."""
    stream = hasattr(path, "write")
    fmt = _format(path, fmt, stream)
    if not stream:
        path = _checked_path(Path(path), overwrite)
    if fmt == "parquet":
        _pyarrow()  # a missing extra is said before the index is read
    index = Index.open(target, name, mode="read")
    ids, codes, items = _read(index)
    columns = {"name": name, "bits": index.bits, "classes": index.row.classes or [], "ids": ids, "codes": codes}
    columns["newline"] = "\n" if stream else "\r\n"  # CSV rows: a terminal's lines, or RFC 4180's in a file
    write = WRITERS[fmt]
    if stream:
        write(path, columns, items)
    else:
        _publish(path, lambda tmp: _to_file(write, fmt, tmp, columns, items), overwrite)
    shown = "-" if stream else str(path)
    return {"index": name, "items": len(ids), "bits": index.bits, "format": fmt, "path": shown}


def _format(path, fmt: str | None, stream: bool) -> str:
    """The format asked for, checked against what path can take; ParameterError naming the choices."""
    if fmt is not None and fmt not in FORMATS:
        raise ParameterError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")
    if stream:
        if (fmt or "jsonl") not in STREAMED:
            raise ParameterError(f"standard output takes jsonl or csv, not {fmt}: name a .{fmt} file")
        return fmt or "jsonl"
    suffix = Path(path).suffix.lower().lstrip(".")
    if fmt is None and suffix not in FORMATS:
        raise ParameterError(f"{path}: export to a file named .{', .'.join(FORMATS)}, or give the format")
    if fmt is not None and suffix in FORMATS and suffix != fmt:
        raise ParameterError(f"{path}: a .{suffix} file cannot hold {fmt}; name it .{fmt}")
    return fmt or suffix


def _checked_path(path: Path, overwrite: bool) -> Path:
    """path, when a file can be written there: its folder exists, and it is no folder, nor a file
    to keep (overwrite False)."""
    if path.is_dir():
        raise ParameterError(f"{path} is a folder; name a file to write")
    if not path.parent.is_dir():
        raise ParameterError(f"{path.parent}: no such folder to write {path.name} in")
    if not overwrite and os.path.lexists(path):
        raise OutputExists(f"{path} exists already; nothing was written")
    return path


def _read(index: Index) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(ids (n,) int64, codes (n, bits/8) uint8, each item described as a search shows it), from
    the codes' snapshot: read again when a writer removed some items before their rows were read."""
    for _ in range(SEARCH_ATTEMPTS):
        ids, codes, row = index.store.load_codes(index.name)
        rows = index.items(ids, index_id=row.id)
        if len(rows) == len(ids):
            break
    else:
        raise Unavailable(f"index {index.name!r} changes faster than it can be exported; try again")
    folder = index.sources_folder() if index.row.source_root else None  # once, not a stat per item
    return ids, codes, [index.describe(rows[int(i)], folder) for i in ids]


def _records(columns: dict, items: list[dict]):
    """An item at a time: {key, id, label, class, code (hex), source, meta, and snippet for texts}."""
    for i, code, item in zip(columns["ids"], columns["codes"], items):
        label = item.get("label")
        yield {
            "key": item["key"],
            "id": int(i),
            "label": None if label is None else int(label),
            "class": item.get("class"),
            "code": code.tobytes().hex(),
            "source": item.get("source"),
            "meta": item.get("meta"),
            **({"snippet": item["snippet"]} if item.get("snippet") is not None else {}),  # texts only
        }


def _jsonl(f, columns: dict, items: list[dict]) -> None:
    for record in _records(columns, items):  # ASCII: no character a line reader splits a line at
        f.write(json.dumps(record) + "\n")


def _csv(f, columns: dict, items: list[dict]) -> None:
    from ..hashing.safe_text import CsvWriter  # no formulas, no split rows

    writer = CsvWriter(f, newline=columns["newline"])
    writer.writerow(["key", "label", "code", "class", "source", "meta"])
    for r in _records(columns, items):
        meta = "" if r["meta"] is None else json.dumps(r["meta"], ensure_ascii=False)
        writer.writerow([r["key"], _cell(r["label"]), r["code"], _cell(r["class"]), _cell(r["source"]), meta])


def _cell(value):
    return "" if value is None else value


def _npy(tmp: str, columns: dict, items: list[dict]) -> None:
    with open(tmp, "wb") as f:
        np.save(f, columns["codes"])


def _npz(tmp: str, columns: dict, items: list[dict]) -> None:
    labels = np.array([-1 if it.get("label") is None else it["label"] for it in items], np.int64)
    # the sources and metadata as one JSON text each: a fixed-width array of strings would be as
    # wide as the longest one, for every item
    with open(tmp, "wb") as f:
        np.savez(
            f,
            keys=np.array([it["key"] for it in items], dtype=str),
            ids=columns["ids"],
            labels=labels,
            codes=columns["codes"],
            classes=np.array(columns["classes"], dtype=str),
            sources=np.array(json.dumps([it.get("source") for it in items])),
            metas=np.array(json.dumps([it.get("meta") for it in items])),
        )


def _parquet(tmp: str, columns: dict, items: list[dict]) -> None:
    pa, pq = _pyarrow()
    records = list(_records(columns, items))
    table = pa.table(
        {
            "key": pa.array([r["key"] for r in records], pa.string()),
            "id": pa.array(columns["ids"], pa.int64()),
            "label": pa.array([r["label"] for r in records], pa.int64()),
            "class": pa.array([r["class"] for r in records], pa.string()),
            "code": pa.array([c.tobytes() for c in columns["codes"]], pa.binary(columns["bits"] // 8)),
            "source": pa.array([r["source"] for r in records], pa.string()),
            "meta": pa.array([None if r["meta"] is None else json.dumps(r["meta"]) for r in records], pa.string()),
        }
    )
    about = {"index": columns["name"], "bits": columns["bits"], "classes": columns["classes"]}
    pq.write_table(table.replace_schema_metadata({"semhash": json.dumps(about)}), tmp)


def _pyarrow():
    """(pyarrow, pyarrow.parquet); NeedsExtra naming the [parquet] extra when it is not installed."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise missing_extra(exc) or exc from None
    return pyarrow, pyarrow.parquet


WRITERS = {"jsonl": _jsonl, "csv": _csv, "npz": _npz, "npy": _npy, "parquet": _parquet}


def _to_file(write, fmt: str, tmp: str, columns: dict, items: list[dict]) -> None:
    """write's output into the file tmp: the text formats through a text file, the others by name."""
    if fmt in STREAMED:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            write(f, columns, items)
    else:
        write(tmp, columns, items)


def _publish(path: Path, write, overwrite: bool) -> None:
    """write(tmp) fills a temp file beside path, which then becomes path in one step: replacing a
    file there only when overwrite (a hard link never replaces one: a file made meanwhile stays)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; an export keeps the user's umask
        if overwrite:
            os.replace(tmp, path)
        else:
            _link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _link(tmp: str, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExists(f"{path} exists already; nothing was written") from None
    except OSError:  # a file system without hard links: look, then rename
        if os.path.lexists(path):
            raise OutputExists(f"{path} exists already; nothing was written") from None
        os.replace(tmp, path)
