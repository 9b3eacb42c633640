"""An index records which verifier made its signatures (Verifier.name, the `signer` of its row):
signatures made another way (another version's thumbnail or sketch, often of the same width) are
never compared with this version's; they count as missing, dedup says so, and `semhash index sync`
signs the items again."""

from __future__ import annotations

import sqlite3
import warnings

import numpy as np
import pytest
from test_duplicates import features_index, vectors_with_copies

import semhash
from semhash.hashing import inputs
from semhash.hashing.errors import SkippedItems, StoreError
from semhash.index_store.duplicates import find_duplicates
from semhash.index_store.index import Index


@pytest.fixture
def vectors(tmp_path, monkeypatch):
    """An index of 60 random vectors, the first 10 again with a little noise; its .npy and model."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    db, _ = features_index(tmp_path, vectors_with_copies(np.random.default_rng(0), 60, 10))
    return db, tmp_path / "vecs.npy"


def signer_of(db) -> str | None:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT signer FROM semhash_indexes").fetchone()[0]


def test_an_index_records_the_verifier_of_its_signatures(vectors):
    db, _ = vectors
    assert signer_of(db) == inputs.get("features").verifier().name
    found = find_duplicates(db, threshold=0.95, radius=16, pairs=True)
    assert len(found["pairs"]) == 10


def test_signatures_of_another_version_are_never_compared_until_sync_signs_again(vectors):
    db, source = vectors
    with sqlite3.connect(db) as conn:  # as an older semhash's thumbnails would be: same width, other meaning
        conn.execute("UPDATE semhash_indexes SET signer = 'cosine/some-older-way'")
    with pytest.warns(SkippedItems, match="70 of 70 items have no signature of this version's"):
        by_codes = find_duplicates(db, radius=1)
    assert by_codes["units"] == "Hamming distance"
    with pytest.raises(StoreError, match="no signatures"), warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedItems)
        find_duplicates(db, threshold=0.95)
    semhash.sync_index(db, str(source))
    assert signer_of(db) == inputs.get("features").verifier().name
    assert len(find_duplicates(db, threshold=0.95, radius=16, pairs=True)["pairs"]) == 10


def test_signing_another_way_drops_the_other_signatures_first(vectors):
    db, _ = vectors
    index = Index.open(db, "default", mode="write")
    ids = index.store.load_signatures("default")[0]
    index.store.put_signatures("default", ids[:5], np.zeros((5, 48), np.uint8), "another/verifier")
    kept, blobs, signer = index.store.load_signatures("default")
    assert signer == "another/verifier" and list(kept) == list(ids[:5])  # none of the first verifier's left


def test_the_command_line_says_so_in_one_warning_line(vectors):
    from typer.testing import CliRunner

    from semhash.cli.main import app

    db, _ = vectors
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE semhash_indexes SET signer = 'cosine/some-older-way'")
    got = CliRunner().invoke(app, ["dedup", str(db), "--radius", "1"])
    assert got.exit_code == 0, got.output
    lines = [line for line in got.stderr.splitlines() if "no signature of this version's" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "70 of 70 items" in lines[0]
    assert "find_duplicates(" not in got.stderr and ".py:" not in got.stderr  # no Python warning's source line
