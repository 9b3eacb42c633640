"""Candidate pairs at any radius: the radius searches run in batches sized by the neighbour profile
and handed on as they come (index_store/duplicates/candidates.py), so memory is one batch of pairs
(PAIR_BUDGET) and not every pair of the index at once (radius 8 over 140,000 items ran out after
2.5 GB). The batches together are exactly every pair within the radius, once; a radius at which one
item's ball alone overflows the budget is refused up front, naming a radius that fits."""

import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semhash.hashing.codes import hamming
from semhash.hashing.errors import ParameterError
from semhash.index_store.duplicates import candidates as candidates_module
from semhash.index_store.duplicates import find_duplicates
from semhash.index_store.duplicates.candidates import PAIR_BYTES, candidate_batches
from semhash.index_store.index import Index


def brute_force_pairs(codes: np.ndarray, radius: int) -> set[tuple[int, int]]:
    """Every pair (i < j) within the radius, from the whole distance matrix."""
    i, j = np.nonzero(np.triu(hamming(codes, codes) <= radius, 1))
    return set(zip(i.tolist(), j.tolist()))


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


# (BATCH, PAIR_BUDGET in pairs): one item a batch, seven, the whole index at once, and batches
# sized by a budget of 50 pairs (at a large radius some sets' typical ball is larger: refused)
BATCHES = [(1, 1 << 30), (7, 1 << 30), (20_000, 1 << 30), (20_000, 50)]


@settings(max_examples=80, deadline=None)
@given(case=clustered_codes(), batches=st.sampled_from(BATCHES))
def test_the_batches_are_every_pair_within_the_radius_once_whatever_their_size(case, batches):
    codes, radius = case
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", tmp)
        mp.setattr(candidates_module, "BATCH", batches[0])
        mp.setattr(candidates_module, "PAIR_BUDGET", batches[1] * PAIR_BYTES)
        db, _ = indexed(Path(tmp), codes)
        s = Index.open(db, mode="read").searcher
        try:
            found = [(int(a), int(b)) for q, p, _ in candidate_batches(s, radius) for a, b in zip(q, p)]
        except ParameterError as exc:  # refused up front, never cut short
            assert "a typical item has about" in str(exc) and batches[1] == 50 and len(codes) > 50
            return
    assert len(found) == len(set(found)) and set(found) == brute_force_pairs(codes, radius)


def test_a_large_radius_holds_one_batch_of_pairs_not_every_pair(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    codes = np.random.default_rng(0).integers(0, 256, (4000, 2), dtype=np.uint8)
    db, _ = indexed(tmp_path, codes)
    s = Index.open(db, mode="read").searcher
    s.run_radius_plan(codes[:1], 8, *s.plan(8, 1))  # the planner's clock for radius 8, taken once (its own memory)
    budget = 32 << 20
    monkeypatch.setattr(candidates_module, "PAIR_BUDGET", budget)
    tracemalloc.start()
    seen = sum(len(q) for q, _, _ in candidate_batches(s, 8))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seen == len(brute_force_pairs(codes, 8))  # 4.8 million pairs: 115 MB as three int64 columns
    assert seen * 24 > 3 * budget and peak < 1.5 * budget, (seen, peak)


def test_a_radius_whose_typical_ball_overflows_the_budget_is_refused_naming_one_that_fits(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    codes = np.random.default_rng(1).integers(0, 256, (2000, 2), dtype=np.uint8)
    db, _ = indexed(tmp_path, codes)
    monkeypatch.setattr(candidates_module, "PAIR_BUDGET", 100 * PAIR_BYTES)  # 100 pairs
    within = Index.open(db, mode="read").searcher.within + 1
    fits = int(np.flatnonzero(within <= 100).max())
    with pytest.raises(ParameterError) as refused:
        find_duplicates(db, radius=fits + 1)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"at radius {fits + 1} a typical item has about ")
    assert message.endswith(f"; radius {fits} or less fits")
    assert find_duplicates(db, radius=fits)["radius"] == fits
