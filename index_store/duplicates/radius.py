"""The candidate radius a threshold needs, measured on the index's own data.

    radius, rule = derive_radius(searcher, signatures, verifier, threshold)

A sample of the index's items (SAMPLE) is searched at a probe radius: the largest whose typical
ball holds at most PROBE items (so that a whole run at it stays affordable) and at most a quarter
of the bits. Each candidate pair is verified; the radius is the smallest that holds RECALL of the
verified pairs' Hamming distances, but no larger than the largest whose sampled items met at most
CANDIDATES other items each on average: the mean ball, not the median, is what a run verifies
(ITQ codes of 100,000 texts: median ball 19 at radius 9, mean 306, 30M candidates and 62 s).
Pairs beyond the probe radius are not seen: the rule says which radius was probed and whether
the budget capped it, and `--radius` overrides it.
"""

from __future__ import annotations

import numpy as np

from ..engine.searcher import Searcher

SAMPLE, PROBE, RECALL = 2_000, 32, 0.99
CANDIDATES = 40  # pairs an item may propose on average (a text's verification: ~0.5 us a pair)


def derive_radius(s: Searcher, sig: np.ndarray, verifier, threshold: float) -> tuple[int, str]:
    """(radius, the rule in words) for pairs at or above threshold (verifier's units)."""
    within = np.asarray(s.within, dtype=np.float64)
    affordable = np.flatnonzero(within[: s.bits // 4 + 1] <= PROBE)
    probe = int(affordable.max()) if len(affordable) else 0
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(len(s), min(SAMPLE, len(s)), replace=False)) if len(s) else np.zeros(0, np.int64)
    qi, pos, dist = s.run_radius_plan(s.codes[sample], probe, *s.plan(probe, max(1, len(sample))))
    other = pos != sample[qi]
    qi, pos, dist = qi[other], pos[other], dist[other]
    ok = verifier.score_pairs(sig, sample[qi], sig, pos) >= threshold - 1e-9
    found = np.sort(dist[ok])
    cap = _budget_radius(dist, len(sample), probe)
    where = f"{len(sample):,} sampled items, searched to radius {probe}"
    if not len(found):
        return cap, f"derived: no pair at {verifier.units} >= {threshold:g} among {where}: radius {cap}"
    wanted = int(found[min(len(found) - 1, int(np.ceil(RECALL * len(found))) - 1)])
    radius = min(wanted, cap)
    held = float(np.mean(found <= radius))
    capped = "" if radius == wanted else f", capped at {CANDIDATES} candidates an item"
    return radius, (
        f"derived: holds {held:.0%} of the {len(found):,} pairs at {verifier.units} >= {threshold:g} of {where}{capped}"
    )


def _budget_radius(dist: np.ndarray, sampled: int, probe: int) -> int:
    """The largest radius up to probe at which the sampled items met at most CANDIDATES other
    items each on average (0 at least)."""
    per_item = np.cumsum(np.bincount(dist.astype(np.int64), minlength=probe + 1)[: probe + 1]) / max(sampled, 1)
    fits = np.flatnonzero(per_item <= CANDIDATES)
    return int(fits.max()) if len(fits) else 0
