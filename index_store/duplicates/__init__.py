"""Near-duplicates: candidates from codes, decisions from the items, groups that do not chain.

    find_duplicates("items.db")                                   # the index's own defaults
    find_duplicates("items.db", threshold=0.95, keep="oldest", pairs=True)
    find_duplicates("photos/", model="m.semhash")                 # a folder's items, nothing stored
    find_duplicates("new.db", against="items.db")                 # set A against set B
    find_duplicates("items.db", radius=2)                         # codes alone (an index without signatures)

The library API (stable; `semhash.find_duplicates`, `semhash dedup`, HTTP POST
/indexes/{name}/duplicates all call it):

    find_duplicates(target, name="default", threshold=None, radius=None, keep="first",
                    against=None, against_name=None, model=None, pairs=False,
                    max_pairs=None, max_groups=None, announce=None) -> dict
    {
      "index": name | "folder": path,  "against": {"index": name} | {"folder": path} (set B),
      "items": n,  "against_items": m,
      "units": "correlation" | "cosine" | "Jaccard" | "Hamming distance",
      "threshold": t (None for codes alone),  "radius": r,  "radius_rule": "given" | "derived: ...",
      "keep": rule,  "candidates": pairs the codes proposed,  "verified": pairs at or above t,
      "memory_mb": the estimate announced before starting,
      "groups": [{"keep": key, "remove": [key, ...], "scores": [score, ...]}, ...] (largest first),
      "pairs": [{"a": key, "b": key, "score": s, "distance": d}, ...]   (pairs=True; best first),
      "truncated": True when max_pairs or max_groups cut a list
    }

Candidates: every item is a radius query against its own index (candidates.py, batches of bounded
memory), and the pairs its kind's signatures propose beyond that radius (Verifier.propose: texts'
MinHash bands, images' shift-free keys, vectors' sorted hyperplane keys), which the codes miss.
Items whose code more than CROWD others share (clusters that collapse onto one code) ask nothing
of the codes: their pairs among themselves are the signatures' proposals alone, so the work an
item brings is bounded whatever the buckets hold. Decisions: the verifier of the
items' kind (hashing/signatures/, through InputKind.verifier()) scores each candidate pair from
the signatures kept with the items; pairs at or above `threshold` (in the kind's units: image
correlation, vector cosine, text Jaccard) are duplicates. radius None: derived from the threshold
on the index's own data (radius.py). An index whose items have no signatures of this version's
verifier (stored before m004, signed by another version, or added as bare codes) is decided by
code distance alone, with a warning naming `semhash index sync`; a threshold asked of one is
refused.
Groups (groups.py): each member verified against its representative, the one the `keep` rule
prefers. Against a set B: pairs join an item of B to one of A, never two of one set; each group
keeps an item of A and removes the items of B that duplicate it (each B item in one group: its
best match).
"""

from __future__ import annotations

from itertools import chain

import numpy as np

from ...hashing.codes import hamming_rows
from ...hashing.errors import ParameterError, StoreError
from .candidates import CROWD, PAIR_BUDGET, candidate_batches, crowded
from .groups import KEEP_RULES
from .radius import derive_radius
from .report import _report
from .sides import Side, open_side, warn_unsigned

__all__ = ["KEEP_RULES", "find_duplicates"]

# What a Verifier.propose holds at its peak beside the signatures: 1M 768-d vectors' window pairs
# (a batch of rows as float32, their hyperplane products, the keys) peaked 480 MB over the rest.
PROPOSE_BYTES = 512 << 20


def find_duplicates(
    target,
    name: str = "default",
    threshold: float | None = None,
    radius: int | None = None,
    keep: str = "first",
    against=None,
    against_name: str | None = None,
    model=None,
    pairs: bool = False,
    max_pairs: int | None = None,
    max_groups: int | None = None,
    announce=None,
) -> dict:
    """Near-duplicate groups (and pairs) of index `name` at target (or of the items at path target,
    encoded by model), or of set B (against: an index, a folder or a file) against it. See the
    module's docstring for the result. announce(line), if given, hears the memory the run will use
    before it starts and the radius chosen."""
    if keep not in KEEP_RULES:
        raise ParameterError(f"unknown keep rule {keep!r}: use one of {', '.join(KEEP_RULES)}")
    for what, cap in (("max_pairs", max_pairs), ("max_groups", max_groups)):
        if cap is not None and (not isinstance(cap, int) or cap < 0):
            raise ParameterError(f"{what} must be a whole number of 0 or more, got {cap!r}")
    say = announce or (lambda line: None)
    a = open_side(target, name, model)
    b = None if against is None else open_side(against, against_name or name, None if a.hasher is None else model)
    if b is not None and b.searcher.bits != a.searcher.bits:
        raise ParameterError(
            f"{against} has {b.searcher.bits}-bit codes, {target} {a.searcher.bits}-bit: not one model's"
        )
    verifier = _verifier(a, b, threshold)
    if verifier is not None:
        threshold = _threshold(verifier, threshold)
    elif radius is None:
        radius = 0
    skip = _crowded(a, b, verifier)
    rule = "given"
    if radius is None:
        radius, rule = derive_radius(
            a.searcher, a.sig, verifier, threshold, skip if b is None else _crowded(a, None, verifier)
        )
    radius = _whole(radius, "the radius")
    pair_bytes = 128 + (0 if verifier is None else 2 * a.sig.shape[1] * a.sig.itemsize)
    mb = _memory(a, b, pair_bytes)
    _announce(say, a, b, mb, radius, rule, skip)
    found = _verified(a, b, radius, verifier, threshold, pair_bytes, skip)
    return _report(a, b, found, verifier, threshold, radius, rule, keep, pairs, max_pairs, max_groups, mb)


def _announce(say, a: Side, b: Side | None, mb: int, radius: int, rule: str, skip) -> None:
    """Tell, before the run, its memory, its radius and how many items' codes are too crowded."""
    sets = f"{len(a):,} items" + ("" if b is None else f" against {len(b):,}")
    say(f"memory: about {mb:,} MB ({sets}); radius {radius} ({rule})")
    if skip is not None and skip.any():
        say(
            f"{int(skip.sum()):,} items share their code with more than {CROWD} others: "
            "their pairs among themselves are proposed by their signatures, not their codes"
        )


def _verifier(a: Side, b: Side | None, threshold):
    """The verifier both sides' signatures answer to, or None (codes alone, with a warning)."""
    sides = [a] if b is None else [a, b]
    if a.verifier is not None and all(s.sig is not None for s in sides):
        if b is not None and b.sig.shape[1] != a.sig.shape[1]:
            raise ParameterError("the two sets' signatures differ in width: their items are of different kinds")
        return a.verifier
    unsigned = next((s for s in sides if s.sig is None), a)
    if threshold is not None:
        where = unsigned.what.get("index") or unsigned.what.get("folder")
        why = "its items' kind keeps none" if a.verifier is None else f"{unsigned.missing:,} of its items have none"
        raise StoreError(
            f"{where} has no signatures to hold a threshold to ({why}): `semhash index sync` or a rebuild adds "
            "them; or give a radius to decide by code distance alone"
        )
    if a.verifier is not None:
        warn_unsigned(unsigned)
    return None


def _threshold(verifier, threshold) -> float:
    t = verifier.threshold if threshold is None else threshold
    try:
        t = float(t)
    except (TypeError, ValueError):
        raise ParameterError(f"the threshold must be a number, got {threshold!r}") from None
    if not verifier.lowest <= t <= verifier.highest:
        raise ParameterError(
            f"a {verifier.units} threshold must be between {verifier.lowest:g} and {verifier.highest:g}, got {t:g}"
        )
    return t


def _whole(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{what} must be a whole number, got {value!r}")
    return int(value)


def _memory(a: Side, b: Side | None, pair_bytes: int) -> int:
    """MB the run holds at its peak, roughly: the search structures as loaded, the signatures of
    both sets, one batch of candidate pairs (PAIR_BUDGET) and the verified pairs kept (24 bytes
    each, budgeted at one per item). With signatures that propose pairs, their working set
    (PROPOSE_BYTES) too."""
    total = 0 if a.verifier is None or a.verifier.propose is None or a.sig is None else PROPOSE_BYTES
    for s in [a] if b is None else [a, b]:
        total += s.searcher.nbytes() + (0 if s.sig is None else s.sig.nbytes)
    return int((total + PAIR_BUDGET + len(a) * 24) / 2**20) + 1


def _crowded(a: Side, b: Side | None, verifier) -> np.ndarray | None:
    """(items of b, or of a) bool: those whose code more than CROWD items of a share, when the
    signatures propose pairs of their own (candidates.crowded); else None (the codes propose all)."""
    if verifier is None or verifier.propose is None:
        return None
    return crowded(a.searcher, None if b is None else b.searcher.codes)


def _verified(a: Side, b: Side | None, radius: int, verifier, threshold, pair_bytes: int, skip=None):
    """(i, j, score, distance) arrays of the verified pairs: positions in a (and in b, or in a);
    score in the verifier's units, or the Hamming distance for codes alone. Also the candidates:
    the code ball's (but for `skip`'s crowded items), then those the signatures propose beyond
    it or among crowded items (Verifier.propose)."""
    keep_i, keep_j, keep_s, keep_d, seen = [], [], [], [], 0
    queries = None if b is None else b.searcher.codes
    balls = candidate_batches(a.searcher, radius, queries, pair_bytes, skip)
    batches = chain(balls, _proposed(a, b, radius, verifier, threshold, skip))
    for qi, pos, dist in batches:
        seen += len(qi)
        if verifier is None:
            score, ok = dist.astype(np.float64), np.ones(len(qi), bool)
        else:
            score = verifier.score_pairs(a.sig, pos, a.sig if b is None else b.sig, qi)
            ok = score >= threshold - 1e-9
        keep_i.append(pos[ok])
        keep_j.append(qi[ok])
        keep_s.append(score[ok])
        keep_d.append(dist[ok])
    cat = lambda parts, t: np.concatenate(parts).astype(t) if parts else np.zeros(0, t)  # noqa: E731
    return cat(keep_i, np.int64), cat(keep_j, np.int64), cat(keep_s, np.float64), cat(keep_d, np.int64), seen


def _proposed(a: Side, b: Side | None, radius: int, verifier, threshold, skip):
    """Yield (qi, pos, dist) int64 arrays: the pairs the signatures propose (Verifier.propose)
    that the code ball did not: codes farther apart than radius, or both items crowded (skip)."""
    if verifier is None or verifier.propose is None or a.sig is None:
        return
    q_codes = a.searcher.codes if b is None else b.searcher.codes
    for qi, pos in verifier.propose(a.sig, None if b is None else b.sig, threshold):
        dist = hamming_rows(a.searcher.codes[pos], q_codes[qi]).astype(np.int64)
        new = dist > radius
        if skip is not None:
            new |= skip[qi] & (skip[pos] if b is None else True)
        yield qi[new], pos[new], dist[new]
