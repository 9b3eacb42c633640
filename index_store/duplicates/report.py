"""The result of a near-duplicate run as people act on it: groups with the item kept and the ones
to remove, and (asked for) the pairs with their scores; keys as stored (output layers make them
safe to show: hashing/safe_text.py)."""

from __future__ import annotations

import os

import numpy as np

from ...hashing.signatures.pair_ids import distinct
from .groups import best_matches, groups_of


def _report(a, b, found, verifier, threshold, radius, rule, keep, pairs, max_pairs, max_groups, mb) -> dict:
    i, j, score, dist, seen = found
    units = "Hamming distance" if verifier is None else verifier.units
    if verifier is None:  # codes alone: a smaller distance is the better score
        score = -score
    out = {**a.what}
    if b is not None:
        out["against"] = b.what
    out.update(items=len(a), **({} if b is None else {"against_items": len(b)}))
    out.update(units=units, threshold=threshold, radius=radius, radius_rule=rule, keep=keep)
    out.update(candidates=int(seen), verified=int(len(i)), memory_mb=mb)
    if b is None:
        involved = distinct(np.concatenate([i, j]))
        rank = _rank(a, involved, keep)
        made = [(r, m, sc) for r, m, sc in groups_of(i, j, score, rank)]
        rows = _rows(a, involved)
        groups = [(rows[r], [rows[x] for x in m.tolist()], sc) for r, m, sc in made]
    else:  # B against A: A's item kept, the items of B that match it best removed
        ga, gb, gs = best_matches(j, i, score)
        ra, rb = _rows(a, np.unique(ga)), _rows(b, np.unique(gb))
        cuts = np.flatnonzero(np.r_[True, ga[1:] != ga[:-1]]) if len(ga) else np.zeros(0, np.int64)
        ends = np.r_[cuts[1:], len(ga)]
        groups = [(ra[int(ga[s])], [rb[int(x)] for x in gb[s:e]], gs[s:e]) for s, e in zip(cuts, ends)]
    sign = -1 if verifier is None else 1
    groups.sort(key=lambda g: (-len(g[1]), g[0]["key"]))
    out["groups"] = [
        {"keep": k["key"], "remove": [m["key"] for m in ms], "scores": [round(float(sign * x), 6) for x in sc]}
        for k, ms, sc in groups[: max_groups if max_groups is not None else None]
    ]
    truncated = max_groups is not None and len(groups) > max_groups
    if pairs:
        order = np.lexsort((dist, -score))[: max_pairs if max_pairs is not None else None]
        truncated |= max_pairs is not None and len(i) > max_pairs
        ra = _rows(a, np.unique(i[order]))
        rb = _rows(a if b is None else b, np.unique(j[order]))
        out["pairs"] = [
            {"a": ra[int(x)]["key"], "b": rb[int(y)]["key"], "score": round(float(sign * s), 6), "distance": int(d)}
            for x, y, s, d in zip(i[order], j[order], score[order], dist[order])
        ]
    out["truncated"] = bool(truncated)
    return out


def _rows(side, positions: np.ndarray) -> dict[int, dict]:
    """{position: {key, id, source}} of the positions (k,), read in one go."""
    positions = np.asarray(positions, dtype=np.int64)
    return dict(zip(positions.tolist(), side.rows(positions))) if len(positions) else {}


def _rank(side, involved: np.ndarray, keep: str) -> np.ndarray:
    """(n,) rank of every position (lower: kept first) by the keep rule; only the positions
    involved in a pair matter (the others rank after them)."""
    rank = np.full(len(side), len(side), dtype=np.int64)
    if not len(involved):
        return rank
    rows = side.rows(involved)
    if keep == "oldest":
        order = sorted(range(len(rows)), key=lambda n: (rows[n]["id"], rows[n]["key"]))
    elif keep == "largest":
        order = sorted(range(len(rows)), key=lambda n: (-_size(rows[n]["source"]), rows[n]["key"]))
    else:
        order = sorted(range(len(rows)), key=lambda n: rows[n]["key"])
    rank[involved[order]] = np.arange(len(order))
    return rank


def _size(source: str | None) -> int:
    """The bytes of an item's file, -1 where it has none (a row of a feature file, a named set)."""
    path = (source or "").split("#", 1)[0]
    try:
        return os.path.getsize(path) if path and os.path.isfile(path) else -1
    except OSError:
        return -1
