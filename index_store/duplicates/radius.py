"""The candidate radius a threshold needs, measured on the index's own data.

    radius, rule = derive_radius(searcher, signatures, verifier, threshold)

A sample of the index's items (SAMPLE) is searched at a probe radius: the largest whose typical
ball holds at most PROBE items (so that a whole run at it stays affordable) and at most a quarter
of the bits. Each candidate pair is verified; the radius is the smallest that holds RECALL of the
verified pairs' Hamming distances, but no larger than the largest whose sampled items met at most
CANDIDATES other items each on average: the mean ball, not the median, is what a run verifies
(ITQ codes of 100,000 texts: median ball 19 at radius 9, mean 306, 30M candidates and 62 s).
Pairs beyond the probe radius are not seen: the rule says which radius was probed and whether
the budget capped it, and `--radius` overrides it. Pairs the signatures propose of their own
(Verifier.covers: texts' shared MinHash band) need no radius: only the others count.
"""

from __future__ import annotations

import numpy as np

from ..engine.searcher import Searcher

SAMPLE, PROBE, RECALL = 2_000, 32, 0.99
CANDIDATES = 40  # pairs an item may propose on average (a text's verification: ~0.5 us a pair)


def derive_radius(s: Searcher, sig: np.ndarray, verifier, threshold: float, skip=None) -> tuple[int, str]:
    """(radius, the rule in words) for pairs at or above threshold (verifier's units). skip (n,)
    bool: crowded items (candidates.crowded), whose pairs the codes do not propose: not sampled."""
    within = np.asarray(s.within, dtype=np.float64)
    affordable = np.flatnonzero(within[: s.bits // 4 + 1] <= PROBE)
    probe = int(affordable.max()) if len(affordable) else 0
    rng = np.random.default_rng(0)
    pool = np.arange(len(s)) if skip is None else np.flatnonzero(~skip)
    sample = np.sort(rng.choice(pool, min(SAMPLE, len(pool)), replace=False)) if len(pool) else np.zeros(0, np.int64)
    qi, pos, dist = s.run_radius_plan(s.codes[sample], probe, *s.plan(probe, max(1, len(sample))))
    other = pos != sample[qi]
    qi, pos, dist = qi[other], pos[other], dist[other]
    ok = verifier.score_pairs(sig, sample[qi], sig, pos) >= threshold - 1e-9
    qi, pos, dist, seen = qi[ok], pos[ok], dist[ok], dist  # the verified pairs; every candidate's distance
    if verifier.covers is not None:  # the pairs the radius has to find: those the signatures miss
        missed = ~verifier.covers(sig[sample[qi]], sig[pos])
        qi, pos, dist = qi[missed], pos[missed], dist[missed]
    found = np.sort(dist)
    cap = _budget_radius(seen, len(sample), probe)
    where = f"{len(sample):,} sampled items, searched to radius {probe}"
    words = f"at {verifier.units} >= {threshold:g}"
    if not ok.any():
        return cap, f"derived: no pair {words} among {where}: radius {cap}"
    need = len(found) - int((1 - RECALL) * ok.sum())  # those the radius must hold for RECALL of all
    if need <= 0:
        share = 1 - len(found) / ok.sum()
        return 0, f"derived: the signatures propose {share:.0%} of the {int(ok.sum()):,} pairs {words} of {where}"
    wanted = int(found[need - 1])
    radius = min(wanted, cap)
    held = float(np.mean(found <= radius))
    capped = "" if radius == wanted else f", capped at {CANDIDATES} candidates an item"
    pairs = f"{len(found):,} pairs {words}"
    if ok.sum() > len(found):
        pairs += f" the signatures do not propose (of {int(ok.sum()):,})"
    return radius, f"derived: holds {held:.0%} of the {pairs} of {where}{capped}"


def _budget_radius(dist: np.ndarray, sampled: int, probe: int) -> int:
    """The largest radius up to probe at which the sampled items met at most CANDIDATES other
    items each on average (0 at least)."""
    per_item = np.cumsum(np.bincount(dist.astype(np.int64), minlength=probe + 1)[: probe + 1]) / max(sampled, 1)
    fits = np.flatnonzero(per_item <= CANDIDATES)
    return int(fits.max()) if len(fits) else 0
