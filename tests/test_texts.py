"""Text documents end to end: every way documents come in (.jsonl, .csv, .tsv, a folder, standard
input) trains a model whose vocabulary lives in its file, builds an index that keeps each
document's snippet, and answers `--text` queries, from Python, the command line and HTTP.

The corpus is synthetic: documents drawn from a few topics, each its own word distribution over a
small vocabulary, plus words every topic shares."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import semhash
from semhash.hashing.errors import DataError

TOPICS = ("space", "sport", "cooking", "music")


def corpus(n: int = 240, seed: int = 0, topics=TOPICS) -> list[dict]:
    """n documents, each 30 words: 70% from its topic's 25 words (Zipf-weighted), 30% shared."""
    rng = np.random.default_rng(seed)
    shared = [f"common{j}" for j in range(40)]
    weights = 1 / np.arange(1, 26)
    weights /= weights.sum()
    docs = []
    for i in range(n):
        topic = topics[i % len(topics)]
        words = [f"{topic}word{j}" for j in range(25)]
        own = rng.choice(words, 21, p=weights).tolist()
        docs.append({"text": " ".join(rng.permutation(own + rng.choice(shared, 9).tolist())), "label": topic})
    return docs


def write(path, docs: list[dict], fmt: str) -> None:
    """docs as .jsonl (a key, a label, a meta field), .csv/.tsv (same columns) or a folder of .txt."""
    rows = [{"key": f"doc{i}", "text": d["text"], "label": d["label"], "lang": "en"} for i, d in enumerate(docs)]
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt in ("csv", "tsv"):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, ["key", "text", "label", "lang"], delimiter="\t" if fmt == "tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    else:
        for i, d in enumerate(docs):
            (path / d["label"]).mkdir(parents=True, exist_ok=True)
            (path / d["label"] / f"doc{i}.txt").write_text(d["text"])


def cli(*args, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        input=stdin,
    )


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """A .jsonl corpus, a 32-bit ITQ model of it and its index."""
    folder = tmp_path_factory.mktemp("texts")
    docs = corpus()
    write(folder / "docs.jsonl", docs, "jsonl")
    model, db = folder / "docs.semhash", folder / "docs.db"
    semhash.train("itq", folder / "docs.jsonl", model, bits=32, featurizer={"vocabulary": 80})
    semhash.build_index(db, model, folder / "docs.jsonl")
    return folder, docs, model, db


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "tsv", "folder"])
def test_each_format_round_trips_through_build_and_export(texts, tmp_path, fmt):
    _, docs, model, _ = texts
    source = tmp_path / ("docs" if fmt == "folder" else f"docs.{fmt}")
    source.mkdir() if fmt == "folder" else None
    write(source, docs[:40], fmt)
    semhash.build_index(tmp_path / "items.db", model, source)
    semhash.export_index(tmp_path / "items.db", "default", tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 40
    for row in rows:
        i = int(row["key"].rsplit("doc", 1)[1].split(".")[0])
        assert row["class"] == docs[i]["label"]
        assert row["snippet"] == docs[i]["text"][:300]  # a document's start: its first 300 characters
        if fmt == "folder":  # the folder's name and the path in it; sub-folders name the classes
            assert row["key"] == f"docs/{docs[i]['label']}/doc{i}.txt" and row["meta"] is None
        else:
            assert row["key"] == f"doc{i}" and row["meta"] == {"lang": "en"}


def test_rows_without_a_key_are_keyed_by_file_and_line(tmp_path):
    (tmp_path / "notes.jsonl").write_text('{"text": "first note"}\n\n{"text": "second note"}\n')
    data = semhash.load_dataset(str(tmp_path / "notes.jsonl"))
    assert data.kind == "texts" and data.keys == ["notes/1", "notes/3"] and data.texts[1] == "second note"


def test_search_by_text_finds_the_document_itself_first(texts):
    _, docs, _, db = texts
    result = semhash.search(db, texts=[d["text"] for d in docs[:20]], k=5)
    for i, q in enumerate(result["queries"]):
        top = q["hits"][0]["distance"]
        assert top == 0 and f"doc{i}" in [h["key"] for h in q["hits"] if h["distance"] == 0]
        # its nearest are documents of its topic
        assert sum(h["class"] == docs[i]["label"] for h in q["hits"]) >= 4


def test_the_model_file_holds_its_vocabulary_and_refuses_another(texts, tmp_path):
    folder, _, model, _ = texts
    hasher = semhash.load_hasher(model)
    assert hasher.spec_.kind == "texts" and hasher.spec_.normalization.startswith("tfidf/")
    assert "spaceword0" in hasher.spec_.featurizer.words
    # another corpus, a vocabulary of as many words: features of the same width, of other words
    write(tmp_path / "other.jsonl", corpus(120, seed=1, topics=("chess", "garden")), "jsonl")
    other = tmp_path / "other.semhash"
    semhash.train("itq", tmp_path / "other.jsonl", other, bits=32, featurizer={"vocabulary": hasher.spec_.shape[0]})
    theirs = semhash.load_dataset(str(tmp_path / "other.jsonl"), spec=semhash.load_hasher(other).spec_)
    with pytest.raises(DataError, match="normalized as 'tfidf/"):
        hasher.encode(theirs)


def test_encode_reads_documents_from_standard_input_in_order(texts):
    folder, docs, model, _ = texts
    lines = "".join(d["text"] + "\n" for d in docs[:30])
    out = cli("encode", "--model", model, "--texts", "-", "--format", "jsonl", stdin=lines)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["input"] for r in rows] == [f"stdin/{i}" for i in range(1, 31)]
    _, codes = semhash.encode(model, texts=[d["text"] for d in docs[:30]])
    assert [r["code"] for r in rows] == [c.tobytes().hex() for c in codes]


def test_search_with_text_and_with_a_file_of_texts(texts, tmp_path):
    folder, docs, _, db = texts
    (tmp_path / "q.txt").write_text(docs[3]["text"] + "\n")
    out = cli("search", db, "--text", docs[2]["text"], "--texts", tmp_path / "q.txt", "-k", "1", "--format", "csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(out.stdout.splitlines()))
    assert [r["query"] for r in rows] == [docs[2]["text"][:60], "q/1"]
    assert rows[0]["snippet"] == docs[2]["text"][:300]


def test_hostile_keys_and_texts_do_not_act_on_output(tmp_path, texts):
    _, _, model, _ = texts
    hostile = [
        {"key": '=HYPERLINK("http://x")', "text": "spaceword0 spaceword1 \x1b[2J\x1b]0;owned\x07 common1"},
        {"key": "doc\x1b[31mred", "text": "sportword0 sportword1 common2"},
    ]
    (tmp_path / "bad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in hostile))
    assert (
        cli("index", "build", tmp_path / "bad.db", "--model", model, "--texts", tmp_path / "bad.jsonl").returncode == 1
    )
    hostile[1]["key"] = "doc-red"  # keys with control characters are refused; formulas are kept, made inert
    (tmp_path / "bad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in hostile))
    out = cli("index", "build", tmp_path / "bad.db", "--model", model, "--texts", tmp_path / "bad.jsonl")
    assert out.returncode == 0, out.stderr
    for fmt in ("table", "csv"):
        out = cli("search", tmp_path / "bad.db", "--text", "spaceword0 spaceword1", "-k", "2", "--format", fmt)
        assert out.returncode == 0 and "\x1b" not in out.stdout and "\x07" not in out.stdout, out.stdout
    assert "'=HYPERLINK" in out.stdout  # the CSV cell starts with a quote: no formula


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.jsonl", b"", "not text documents"),
        ("notext.jsonl", b'{"body": "no text field"}\n', "not text documents"),
        ("mixed.jsonl", b'{"text": "a document"}\n{"text": 3}\n', "line 2: every document needs a `text`"),
        ("docs/binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "a binary file, not UTF-8 text"),
        ("huge.jsonl", b'{"text": "' + b"a" * (9 << 20) + b'"}\n', "line 1: longer than 8 MiB"),
    ],
)
def test_bad_documents_are_one_line(texts, tmp_path, name, content, message):
    _, _, model, _ = texts
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    given = path.parent if name.startswith("docs/") else path
    out = cli("index", "build", tmp_path / "x.db", "--model", model, "--texts", given)
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "x.db").exists() or "Traceback" not in out.stderr


def test_http_searches_and_adds_texts(texts, tmp_path):
    from fastapi.testclient import TestClient

    folder, docs, model, db = texts
    copy = tmp_path / "served.db"
    copy.write_bytes(db.read_bytes())
    client = TestClient(semhash.create_app(str(copy)))
    assert client.get("/indexes/default").json()["takes"]["kind"] == "texts"
    found = client.post("/indexes/default/search/texts", json={"texts": [docs[5]["text"]], "k": 3}).json()
    assert "doc5" in [h["key"] for h in found["queries"][0]["hits"]]
    assert found["queries"][0]["hits"][0]["snippet"]
    new = {"key": "added", "text": "musicword0 musicword1 musicword2 common3", "label": 2, "meta": {"by": "api"}}
    assert client.post("/indexes/default/items/texts", json={"items": [new]}).status_code == 200
    item = client.get("/indexes/default/items", params={"key": "added"}).json()
    assert item["snippet"] == new["text"] and item["meta"] == {"by": "api"}
    bad = client.post("/indexes/default/search/texts", json={"texts": [], "k": 3})
    assert bad.status_code == 422
    long = client.post("/indexes/default/search/texts", json={"texts": ["a" * 100_001]})
    assert long.status_code == 422


def test_a_text_index_refuses_image_and_vector_models_reading_texts(tmp_path, digits):
    train, _ = digits
    model = tmp_path / "digits.semhash"
    semhash.train("itq", train, model, bits=16)
    with pytest.raises(DataError, match="not trained on texts"):
        semhash.encode(model, texts=["some words"])


def test_20newsgroups_is_a_named_data_set():
    try:
        test = semhash.load_dataset("20newsgroups", "test", download=False)
    except DataError as exc:
        pytest.skip(f"20 Newsgroups not under the data root: {exc}")
    assert len(test) == 7528 and len(test.classes) == 20 and test.kind == "texts"
    assert test.labels.shape == (7528,) and test.texts[0] == test.texts[0].lower()


def test_an_index_of_texts_grows_and_follows_its_file(texts, tmp_path):
    _, docs, model, _ = texts
    write(tmp_path / "docs.jsonl", docs[:30], "jsonl")
    lines = "".join(d["text"] + "\n" for d in docs[30:40])
    assert cli("index", "build", tmp_path / "items.db", "--model", model, "--texts", "-", stdin=lines).returncode == 0
    out = cli("index", "add", tmp_path / "items.db", "--texts", tmp_path / "docs.jsonl")  # the index's own model
    assert out.returncode == 0, out.stderr
    write(tmp_path / "docs.jsonl", docs[:20] + [{"text": "chess openings", "label": "space"}], "jsonl")
    report = semhash.sync_index(tmp_path / "items.db", str(tmp_path / "docs.jsonl"))
    # doc20's text changed; doc21-doc29 and the 10 documents read from stdin are gone
    assert (report["changed"], report["removed"], report["unchanged"], report["added"]) == (1, 9 + 10, 20, 0)
    hit = semhash.search(tmp_path / "items.db", items=["doc20"], k=1)["queries"][0]["hits"][0]
    assert hit["key"] == "doc20" and hit["snippet"] == "chess openings"
