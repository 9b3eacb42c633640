"""Multi-index hashing (Norouzi, Punjani & Fleet, CVPR 2012).

Split every code into m disjoint substrings and keep one hash table per substring. If two codes
are within Hamming distance r, then by the pigeonhole principle at least one of their m substrings
is within floor(r / m). So probing each table with every flip of the query's substring up to that
radius finds a candidate set that contains every true neighbour; candidates are then verified by
their full distance. With m = 1 this is plain bit-flip probing of a single whole-code table.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, log2

import numpy as np

from ...hashing.codes import ball_size, flip_masks, substring_bounds, substrings
from .hashtable import HashTable


@dataclass
class MultiIndexHash:
    """subkeys: (n, m) uint64 substring keys of every item position; one HashTable per substring."""

    bits: int
    bounds: list[tuple[int, int]]
    subkeys: np.ndarray
    tables: list[HashTable]

    @classmethod
    def build(cls, codes: np.ndarray, m: int) -> MultiIndexHash:
        """codes: (n, bits/8) uint8 in position order."""
        bits = codes.shape[1] * 8
        bounds = substring_bounds(bits, m)
        subkeys = substrings(codes, m)
        tables = [HashTable.build(subkeys[:, j], stop - start) for j, (start, stop) in enumerate(bounds)]
        return cls(bits, bounds, subkeys, tables)

    @property
    def m(self) -> int:
        return len(self.bounds)

    def probes(self, radius: int) -> int:
        """Probes per query for a full-code search radius."""
        return sum(ball_size(stop - start, radius // self.m) for start, stop in self.bounds)

    def expected_candidates(self, radius: int, n: int) -> float:
        """Candidates per query if codes were uniform: probes x items per bucket."""
        return sum(ball_size(stop - start, radius // self.m) * n / 2.0 ** (stop - start) for start, stop in self.bounds)

    def candidates(self, query_codes: np.ndarray, sub_radius: int) -> tuple[np.ndarray, np.ndarray]:
        """(query index, item position) pairs, each pair once, of every item that has at least one
        substring within sub_radius of the query's. Contains all items within m*(sub_radius+1)-1."""
        qsub = substrings(query_codes, self.m)
        found_q, found_pos = [], []
        for j, ((start, stop), table) in enumerate(zip(self.bounds, self.tables)):
            masks = flip_masks(stop - start, sub_radius)
            probe_idx, pos = table.lookup((qsub[:, j, None] ^ masks[None, :]).ravel())
            q = probe_idx // len(masks)
            if j:  # keep a pair only in the first table that finds it
                earlier = np.bitwise_count(self.subkeys[pos, :j] ^ qsub[q, :j]) <= sub_radius
                keep = ~earlier.any(axis=1)
                q, pos = q[keep], pos[keep]
            found_q.append(q)
            found_pos.append(pos)
        return np.concatenate(found_q), np.concatenate(found_pos)

    def nbytes(self) -> int:
        return self.subkeys.nbytes + sum(t.nbytes() for t in self.tables)


def choose_m(bits: int, n: int) -> int:
    """Norouzi et al.'s choice, substrings of about log2(n) bits, each fitting a 64-bit key."""
    m = max(1, round(bits / max(log2(max(n, 2)), 1.0)))
    return min(bits, max(m, ceil(bits / 64)))
