"""Near-duplicate groups at any radius: the radius searches run in batches sized by the neighbour
profile and merged into a union-find as they come, so memory is one batch of links (LINK_BUDGET)
and not every pair of the index at once (radius 8 over 140,000 items ran out after 2.5 GB). The
groups stay exactly the connected components of every pair within the radius; a radius at which
one item's ball alone overflows the budget is refused up front, naming a radius that fits."""

import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from semhash.hashing.codes import hamming
from semhash.hashing.errors import ParameterError
from semhash.index_store import dedup as dedup_module
from semhash.index_store.dedup import LINK_BYTES, dedup
from semhash.index_store.index import Index


def brute_force_groups(keys: list[str], codes: np.ndarray, radius: int) -> list[list[str]]:
    """Connected components of every pair within the radius, from the whole distance matrix."""
    _, label = connected_components(csr_matrix(hamming(codes, codes) <= radius), directed=False)
    groups = [sorted(k for k, g in zip(keys, label) if g == group) for group in set(label)]
    return sorted(g for g in groups if len(g) > 1)


def indexed(folder: Path, codes: np.ndarray) -> tuple[str, list[str]]:
    keys = [f"item-{i:04d}" for i in range(len(codes))]
    Index.create(folder / "items.db", "default", codes.shape[1] * 8).add(keys, codes)
    return str(folder / "items.db"), keys


@st.composite
def clustered_codes(draw):
    """(codes, radius): a few centres and copies of them a few bits away (duplicates included)."""
    nbytes = draw(st.sampled_from([1, 2, 4]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    centres = rng.integers(0, 256, (draw(st.integers(1, 8)), nbytes), dtype=np.uint8)
    picks = centres[rng.integers(0, len(centres), draw(st.integers(0, 60)))]
    flips = np.packbits(rng.random((len(picks), nbytes * 8)) < draw(st.sampled_from([0.0, 0.05, 0.2])), axis=1)
    return picks ^ flips, draw(st.integers(0, nbytes * 8))


# (BATCH, LINK_BUDGET in links): one item a batch, seven, the whole index at once, and batches
# sized by a budget of 50 links (at a large radius some sets' typical ball is larger: refused)
BATCHES = [(1, 1 << 30), (7, 1 << 30), (20_000, 1 << 30), (20_000, 50)]


@settings(max_examples=80, deadline=None)
@given(case=clustered_codes(), batches=st.sampled_from(BATCHES))
def test_groups_equal_the_connected_components_of_every_pair_whatever_the_batches(case, batches):
    codes, radius = case
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", tmp)
        mp.setattr(dedup_module, "BATCH", batches[0])
        mp.setattr(dedup_module, "LINK_BUDGET", batches[1] * LINK_BYTES)
        db, keys = indexed(Path(tmp), codes)
        try:
            groups = dedup(db, radius=radius)["groups"]
        except ParameterError as exc:  # refused up front, never cut short
            assert "a typical item has about" in str(exc) and batches[1] == 50 and len(codes) > 50
            return
    assert sorted(groups) == brute_force_groups(keys, codes, radius)


def test_a_large_radius_holds_one_batch_of_links_not_every_pair(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    codes = np.random.default_rng(0).integers(0, 256, (4000, 2), dtype=np.uint8)
    db, keys = indexed(tmp_path, codes)
    # the planner's clock for radius 8, taken once and kept beside the cache (its own memory, apart)
    Index.open(db, mode="read").search_ids(codes[:1], k=None, radius=8)
    budget = 32 << 20
    monkeypatch.setattr(dedup_module, "LINK_BUDGET", budget)
    tracemalloc.start()
    groups = dedup(db, radius=8)["groups"]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    pairs = int((hamming(codes, codes) <= 8).sum())  # 9.6 million links: 150 MB as two int64 columns
    assert pairs * 16 > 4 * budget and peak < 1.5 * budget, (pairs, peak)
    assert sorted(groups) == brute_force_groups(keys, codes, 8)


def test_a_radius_whose_typical_ball_overflows_the_budget_is_refused_naming_one_that_fits(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    codes = np.random.default_rng(1).integers(0, 256, (2000, 2), dtype=np.uint8)
    db, _ = indexed(tmp_path, codes)
    monkeypatch.setattr(dedup_module, "LINK_BUDGET", 100 * LINK_BYTES)  # 100 links: 1 MB at 10,000x the items
    within = Index.open(db, mode="read").searcher.within + 1
    fits = int(np.flatnonzero(within <= 100).max())
    with pytest.raises(ParameterError) as refused:
        dedup(db, radius=fits + 1)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"at radius {fits + 1} a typical item has about ")
    assert message.endswith(f"; radius {fits} or less fits")
    assert dedup(db, radius=fits)["radius"] == fits
