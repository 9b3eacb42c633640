"""Groups that do not chain: every member is a verified duplicate of its group's representative.

    groups_of(a, b, score, rank)   # [(rep, members (k,), scores (k,)), ...] positions

Single linkage (the connected components of every verified pair) chains: A~B and B~C put A and C
together however far apart they are (on clustered 768-d embeddings at radius 4: 20 groups of ~330).
Here the items are taken in the keep rule's order (`rank`: lower is kept first); an item not in a
group yet becomes a representative, and takes every item not in a group yet that was verified
against it directly. So every member is within the threshold of its representative, and the kept
item of each group is the best one by the rule. An item whose only duplicates went to other groups'
representatives first stays alone (its pairs are still listed by `--pairs`).
"""

from __future__ import annotations

import numpy as np

KEEP_RULES = {
    "first": "the first key in sort order",
    "oldest": "the item added first (lowest id)",
    "largest": "the largest file (items without a file last; then the first key)",
}


def groups_of(
    a: np.ndarray, b: np.ndarray, score: np.ndarray, rank: np.ndarray
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Verified pairs (a[i], b[i]) with score[i] (positions (m,) and (m,) float), and rank (n,) of
    every position (the keep rule: lower kept first) -> [(representative, members (k,) in rank
    order, their scores against it (k,))], representatives in rank order."""
    if len(a) == 0:
        return []
    both = np.concatenate([a, b])
    other = np.concatenate([b, a])
    scores = np.concatenate([score, score])
    order = np.lexsort((rank[other], rank[both]))  # each item's pairs together, in rank order
    both, other, scores = both[order], other[order], scores[order]
    starts = np.flatnonzero(np.r_[True, both[1:] != both[:-1]])
    ends = np.r_[starts[1:], len(both)]
    taken: set[int] = set()
    out = []
    for s, e in zip(starts.tolist(), ends.tolist()):  # items in rank order
        rep = int(both[s])
        if rep in taken:
            continue
        mine: dict[int, float] = {}  # (a pair listed twice counts once)
        for o, c in zip(other[s:e].tolist(), scores[s:e].tolist()):
            if o not in taken and o != rep:
                mine.setdefault(o, c)
        if not mine:
            continue
        taken.add(rep)
        taken.update(mine)
        out.append((rep, np.array(list(mine), np.int64), np.array(list(mine.values()))))
    return out


def best_matches(b: np.ndarray, a: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Set B against set A: each item of B (b, positions in B) kept once, with the item of A it
    matches best (a) and that score: (a, b, score) (k,) each, by A's position then B's."""
    if len(b) == 0:
        return a, b, score
    order = np.lexsort((-score, b))
    first = np.r_[True, b[order][1:] != b[order][:-1]]
    keep = order[first]
    keep = keep[np.lexsort((b[keep], a[keep]))]
    return a[keep], b[keep], score[keep]
