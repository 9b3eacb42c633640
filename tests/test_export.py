"""`semhash index export`: every stored column of every item - key, id, label, class name, code,
source, metadata - in every format, read back as it was stored.

    semhash index export items.db -o items.jsonl          # or .csv, .npz, .npy, .parquet
    semhash index export items.db -o - --format csv       # standard output: jsonl, or csv
    semhash.export_index("items.db", "default", "items.parquet", overwrite=True)

The index is built from a .jsonl of one's own items (a row each: key, vector, label as a class
name, and any other fields as the item's metadata), so each item's source is `<file>#<row>`.
"""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

import semhash
from semhash.hashing.errors import NeedsExtra, OutputExists, ParameterError

EXTRA = [
    {"colour": "grey", "tags": ["soft", "small"]},
    {"weight": 12.5, "owner": {"name": "Ада"}},
    {"note": 'a, "quoted"\nline'},  # a comma, quotes and a newline inside one CSV cell
    {},  # no metadata
]
KEYS = ["cat/1", "dog/1", "ключ с пробелом", "plain"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(items.db, the records every export must give back, sorted by key)."""
    folder = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        key = KEYS[i] if i < len(KEYS) else f"item/{i}"
        extra = EXTRA[i] if i < len(EXTRA) else {"row": i}
        vector = rng.normal(size=24).round(4).tolist()
        rows.append({"key": key, "vector": vector, "label": ["cat", "dog", "bird"][i % 3], **extra})
    items = folder / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = folder / "own.semhash"
    semhash.train("itq", str(items), model, bits=16)
    db = folder / "items.db"
    index = semhash.build_index(db, model, str(items))
    ids, codes, _ = index.store.load_codes("default")
    code_of = {index.store.items("default", [i])[int(i)]["key"]: c.tobytes().hex() for i, c in zip(ids, codes)}
    classes = index.row.classes
    expected = [
        {
            "key": r["key"],
            "label": classes.index(r["label"]),
            "class": r["label"],
            "code": code_of[r["key"]],
            "source": f"{items}#{i}",
            "meta": {k: v for k, v in r.items() if k not in ("key", "vector", "label")} or None,
        }
        for i, r in enumerate(rows)
    ]
    index.store.engine.dispose()
    return db, sorted(expected, key=lambda r: r["key"])


def from_jsonl(text: str) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "id"} for line in text.splitlines()]


def from_csv(text: str) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == ["key", "label", "code", "class", "source", "meta"]
    return [
        {
            "key": r["key"],
            "label": int(r["label"]) if r["label"] else None,
            "class": r["class"] or None,
            "code": r["code"],
            "source": r["source"] or None,
            "meta": json.loads(r["meta"]) if r["meta"] else None,
        }
        for r in rows
    ]


def from_npz(path) -> list[dict]:
    with np.load(path) as f:
        classes, labels = list(f["classes"]), f["labels"]
        sources, metas = json.loads(str(f["sources"])), json.loads(str(f["metas"]))
        return [
            {
                "key": str(key),
                "label": None if label < 0 else int(label),
                "class": None if label < 0 else str(classes[label]),
                "code": code.tobytes().hex(),
                "source": source,
                "meta": meta,
            }
            for key, label, code, source, meta in zip(f["keys"], labels, f["codes"], sources, metas)
        ]


def from_parquet(path) -> list[dict]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    about = json.loads(table.schema.metadata[b"semhash"])
    assert about["bits"] == 16 and about["index"] == "default"
    return [
        {**{k: v for k, v in r.items() if k != "id"}, "code": r["code"].hex(), "meta": _json(r["meta"])}
        for r in table.to_pylist()
    ]


def _json(text):
    return None if text is None else json.loads(text)


def by_key(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: r["key"])


@pytest.mark.parametrize(
    "suffix, read",
    [
        (".jsonl", lambda p: from_jsonl(p.read_text())),
        (".csv", lambda p: from_csv(p.read_text(encoding="utf-8"))),
        (".npz", from_npz),
        (".parquet", from_parquet),
    ],
)
def test_every_format_gives_back_keys_labels_classes_codes_sources_and_metadata(store, tmp_path, suffix, read):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    db, expected = store
    done = semhash.export_index(db, "default", tmp_path / f"items{suffix}")
    assert done["items"] == len(expected) and done["format"] == suffix[1:]
    assert by_key(read(tmp_path / f"items{suffix}")) == expected


def test_npy_holds_the_codes_alone_in_id_order(store, tmp_path):
    db, expected = store
    semhash.export_index(db, "default", tmp_path / "codes.npy")
    jsonl = semhash.export_index(db, "default", tmp_path / "all.jsonl")
    codes = np.load(tmp_path / "codes.npy")
    in_id_order = [json.loads(line)["code"] for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert codes.dtype == np.uint8 and codes.shape == (jsonl["items"], 2)
    assert [c.tobytes().hex() for c in codes] == in_id_order


@pytest.mark.parametrize("fmt, read", [("jsonl", from_jsonl), ("csv", from_csv)])
def test_standard_output_takes_jsonl_or_csv(store, fmt, read):
    db, expected = store
    args = ["index", "export", str(db), "-o", "-"] + (["--format", fmt] if fmt != "jsonl" else [])
    proc = subprocess.run(
        [sys.executable, "-m", "semhash.cli.main", *args], capture_output=True, text=True, encoding="utf-8"
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert by_key(read(proc.stdout)) == expected


def test_a_text_stream_from_python(store):
    db, expected = store
    out = io.StringIO()
    assert semhash.export_index(db, "default", out, fmt="csv")["path"] == "-"
    assert by_key(from_csv(out.getvalue())) == expected


def test_a_file_there_is_replaced_only_when_asked(store, tmp_path):
    db, expected = store
    kept = tmp_path / "items.jsonl"
    kept.write_text("mine\n")
    with pytest.raises(OutputExists, match="exists already; nothing was written$"):
        semhash.export_index(db, "default", kept)
    assert kept.read_text() == "mine\n"
    semhash.export_index(db, "default", kept, overwrite=True)
    assert by_key(from_jsonl(kept.read_text())) == expected
    cli = [sys.executable, "-m", "semhash.cli.main", "index", "export", str(db), "-o", str(kept)]
    refused = subprocess.run(cli, capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.endswith(
        "exists already; nothing was written; pass --force to replace it\n"
    )
    assert subprocess.run([*cli, "--force"], capture_output=True).returncode == 0


def test_no_folder_is_made_on_the_way(store, tmp_path):
    with pytest.raises(ParameterError, match="no such folder"):
        semhash.export_index(store[0], "default", tmp_path / "missing" / "items.csv")
    assert not (tmp_path / "missing").exists()


def test_parquet_without_pyarrow_names_the_extra(store, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    with pytest.raises(NeedsExtra, match=r"pip install 'semhash\[parquet\]'$"):
        semhash.export_index(store[0], "default", tmp_path / "items.parquet")
    assert list(tmp_path.iterdir()) == []
