"""POST /indexes/{name}/duplicates: the library's find_duplicates over HTTP, bounded (at most
max_groups groups and max_pairs pairs, `truncated` says when cut) and one-line 4xx for bad input."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import semhash
from semhash.index_store.http.service import create_app


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rng = np.random.default_rng(0)
    base = rng.normal(size=(80, 16)).astype(np.float32)
    x = np.concatenate([base, base[:20] + 0.02 * rng.normal(size=(20, 16)).astype(np.float32)])
    np.save(tmp_path / "v.npy", x)
    semhash.train("itq", str(tmp_path / "v.npy"), tmp_path / "m.semhash", bits=16)
    semhash.build_index(tmp_path / "v.db", tmp_path / "m.semhash", str(tmp_path / "v.npy"))
    return TestClient(create_app(str(tmp_path / "v.db")))


def test_groups_and_pairs_come_back_with_scores_and_are_capped(client):
    full = client.post("/indexes/default/duplicates", json={"radius": 16, "threshold": 0.95, "pairs": True})
    assert full.status_code == 200, full.text
    body = full.json()
    assert body["units"] == "cosine" and len(body["groups"]) == 20 and len(body["pairs"]) == 20
    assert all(p["score"] >= 0.95 for p in body["pairs"]) and not body["truncated"]
    capped = client.post(
        "/indexes/default/duplicates", json={"radius": 16, "max_groups": 3, "max_pairs": 2, "pairs": True}
    )
    assert len(capped.json()["groups"]) == 3 and len(capped.json()["pairs"]) == 2 and capped.json()["truncated"]


@pytest.mark.parametrize(
    "body",
    [{"threshold": 5}, {"keep": "newest"}, {"radius": -1}, {"max_pairs": 10**9}, {"against": "nope"}, {"radius": 99}],
)
def test_bad_requests_are_one_line_4xx(client, body):
    r = client.post("/indexes/default/duplicates", json=body)
    assert 400 <= r.status_code < 500 and "\n" not in str(r.json()["detail"]), r.text
