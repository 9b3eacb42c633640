"""The planner and the searcher: the planner models costs over the structures' arrays and times the
callables it is handed, holding no reference to a searcher; the measured plans go to and from the
disk cache's JSON through cache.py."""

import gc
import weakref

import numpy as np

from semhash.index_store.engine import cache
from semhash.index_store.engine.planner import KnnPlan, Planner, Plans
from semhash.index_store.engine.searcher import Searcher


def clustered(rng, n=3000, nbytes=4):
    centres = rng.integers(0, 256, (8, nbytes), dtype=np.uint8)
    noise = np.packbits(rng.random((n, nbytes * 8)) < 0.05, axis=1, bitorder="little")
    return centres[rng.integers(0, 8, n)] ^ noise


def test_a_dropped_searcher_is_freed_without_the_garbage_collector(rng):
    """No cycle through the planner: the last reference gone, the searcher (and its arrays) go too."""
    codes = clustered(rng)
    s = Searcher(np.arange(len(codes)), codes)
    s.knn(codes[:4], 5)
    s.radius(codes[:4], 3)
    assert s.plans().knn and s.plans().radius  # both kinds of plan were made
    gone = weakref.ref(s)
    gc.disable()
    try:
        del s
        assert gone() is None
    finally:
        gc.enable()


def test_the_planner_times_the_plans_it_is_handed(rng):
    codes = clustered(rng)
    s = Searcher(np.arange(len(codes)), codes)
    planner = Planner(s.codes, s.mih, s.within)
    calls = []

    def run(q, radius, how, m):
        calls.append((len(q), radius, how, m))

    clock = planner.radius_clock(2, run)
    assert set(clock) <= {("scan", 0), *(("mih", m) for m in s.mih)}
    assert all(c[1] == 2 and (c[2], c[3]) in clock for c in calls)
    rounds = planner.knn_rounds(5)
    timed = planner.timed(rounds, lambda q: None, lambda q: None)
    assert (timed.start, timed.stop, timed.work) == (rounds.start, rounds.stop, rounds.work)
    assert set(timed.clock) == {"mih", "scan"} and rounds.clock is None


def test_plans_go_through_the_cache_json_and_back(rng, tmp_path):
    codes = clustered(rng)
    s = Searcher(np.arange(len(codes)), codes)
    s.knn(codes[:4], 5)
    s.radius(codes[:4], 2)
    assert s.new_plans
    plans = s.plans()
    assert not s.new_plans
    cache.save_plans(tmp_path, "state-3", {"db": "x"}, plans)
    assert cache.load_plans(tmp_path, "state-3", {"db": "x"}) == plans
    assert cache.load_plans(tmp_path, "state-4", {"db": "x"}) == Plans()  # another SQL state's
    again = Searcher.from_arrays(s.to_arrays())
    again.adopt_plans(cache.load_plans(tmp_path, "state-3", {"db": "x"}))
    assert again._knn_plans == s._knn_plans and again._radius_clocks == s._radius_clocks


def test_a_malformed_or_foreign_plan_record_is_left_out_whole(rng):
    good = {"radius": {"2": {"scan:0": [0.1, 0.01]}}, "knn": {"5": {"start": 0, "stop": 1, "clock": None, "work": 1}}}
    assert cache.plans_from_json(good) == Plans({2: {("scan", 0): (0.1, 0.01)}}, {5: KnnPlan(0, 1, None, 1.0)})
    for bad in (None, {}, {**good, "knn": {"5": {"start": 2, "stop": 1, "clock": None, "work": 1}}}):
        assert cache.plans_from_json(bad) == Plans()
    codes = clustered(rng, n=200)
    s = Searcher(np.arange(len(codes)), codes)
    foreign = cache.plans_from_json({**good, "radius": {"2": {"mih:99": [0.1, 0.01]}}})
    s.adopt_plans(foreign)  # a split these structures lack: nothing is taken, not even the k-NN plan
    assert s._radius_clocks == {} and s._knn_plans == {}
