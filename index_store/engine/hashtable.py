"""Hash tables from integer keys to item positions, looked up a whole batch of probes at a time.

Rows (item positions) are sorted by key, so the items of one key sit in one run. Two layouts find
that run:
  direct  for short keys (multi-index substrings): offsets over all 2^key_bits keys, the run of key
          k is rows[offsets[k]:offsets[k+1]]: one read per probe, no comparison;
  hashed  for long keys: an open-addressing table (linear probing, load <= 1/4) of the distinct
          keys themselves, so a probe that misses - nearly every probe of a Hamming ball - costs
          one cache line; only a hit reads its run's bounds. At 10^7 items this is what keeps the
          cost per probe close to its in-cache cost (a bucket array plus a key array costs 2-3
          cache misses per probe).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_DIRECT_BITS = 24  # offsets of 2^24 int32 = 64 MiB at most
FIBONACCI = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: multiplicative hashing's constant


@dataclass
class HashTable:
    """rows: (n,) item positions in key order; offsets: run bounds, (2^key_bits + 1,) when direct,
    else (distinct + 1,) per distinct key. Hashed only: slots (2^slot_bits,) distinct keys or
    `empty`, slot_run (2^slot_bits,) the run of the key in each slot. Integers narrowed where they
    fit: the tables are read at random, so bytes are cache misses."""

    key_bits: int
    rows: np.ndarray
    offsets: np.ndarray
    slots: np.ndarray | None = None
    slot_run: np.ndarray | None = None
    empty: int = 0

    @classmethod
    def build(cls, keys: np.ndarray, key_bits: int, direct: bool | None = None) -> HashTable:
        """keys: (n,) uint64, the key of the item at each position."""
        keys = np.asarray(keys, dtype=np.uint64)
        index_type = np.int32 if len(keys) < 2**31 else np.int64
        # 1M keys: radix sort of 16-bit keys 0.02 s, numpy's SIMD quicksort of wider ones 0.03 s, a
        # stable sort of uint64 0.12 s (rows of one key need no order: results are sorted by id later)
        order = np.argsort(keys.astype(np.uint16), kind="stable") if key_bits <= 16 else np.argsort(keys)
        rows = order.astype(index_type)
        if direct is None:
            direct = key_bits <= direct_bits(len(keys))
        if direct:
            counts = np.bincount(keys.astype(np.int64), minlength=1 << key_bits)
            return cls(key_bits, rows, np.concatenate([[0], np.cumsum(counts)]).astype(index_type))
        ordered = keys[order]  # sorted already: the runs' starts are where the key changes
        first = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]])) if len(keys) else order[:0]
        distinct = ordered[first]
        offsets = np.concatenate([first, [len(keys)]]).astype(index_type)
        key_type = np.uint32 if key_bits <= 32 else np.uint64
        slots, slot_run, empty = _open_addressing(distinct, key_type)
        return cls(key_bits, rows, offsets, slots, slot_run.astype(index_type), empty)

    @property
    def direct(self) -> bool:
        return self.slots is None

    def lookup(self, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All matches of a batch of probe keys: (probe index, item position), both (matches,) int64."""
        probes = np.asarray(probes, dtype=np.uint64)
        if self.direct:
            probe_idx, run = np.arange(len(probes)), probes.astype(np.int64)
        else:
            probe_idx, slot = self._find_slots(probes)
            run = self.slot_run[slot].astype(np.int64)
        # start and stop in one gather: a view of overlapping (offsets[i], offsets[i+1]) pairs
        pairs = np.lib.stride_tricks.as_strided(
            self.offsets, (len(self.offsets) - 1, 2), (self.offsets.itemsize,) * 2, writeable=False
        )
        bounds = pairs[run]
        hit = np.flatnonzero(bounds[:, 1] > bounds[:, 0])
        owner, table_rows = expand_ranges(bounds[hit, 0], bounds[hit, 1])
        return probe_idx[hit[owner]], self.rows[table_rows].astype(np.int64)

    def _find_slots(self, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probe index, slot) of every probe whose key is in the table, by linear probing. At load
        <= 1/4 nearly every probe ends in the first round, at its key or at an empty slot."""
        mask = len(self.slots) - 1
        want = probes.astype(self.slots.dtype)
        slot = _hash(probes, len(self.slots).bit_length() - 1)
        todo = np.arange(len(probes))
        found_p, found_s = [], []
        while len(todo):
            seen = self.slots[slot]
            hit = np.flatnonzero(seen == want)
            found_p.append(todo[hit])
            found_s.append(slot[hit])
            more = np.flatnonzero((seen != want) & (seen != self.empty))  # another key: look next door
            todo, want, slot = todo[more], want[more], (slot[more] + 1) & mask
        p, s = np.concatenate(found_p), np.concatenate(found_s)
        real = self.slots[s] != self.empty  # a probe for the marker value itself "hits" empty slots
        return p[real], s[real]

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays().values())

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "rows": self.rows,
            "offsets": self.offsets,
            "shape": np.array([self.key_bits, self.empty], dtype=np.uint64),
        }
        if not self.direct:
            out.update(slots=self.slots, slot_run=self.slot_run)
        return out

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> HashTable:
        key_bits, empty = (int(v) for v in a["shape"])
        t = cls(key_bits, a["rows"], a["offsets"], a.get("slots"), a.get("slot_run"), empty)
        runs = (1 << key_bits) if t.direct else len(t.slots)
        if (
            t.offsets[-1] != len(t.rows)
            or (t.direct and len(t.offsets) != runs + 1)
            or (not t.direct and (len(t.slot_run) != runs or runs & (runs - 1)))
        ):
            raise ValueError("hash table arrays are inconsistent")
        return t


def direct_bits(n: int) -> int:
    """Longest key kept in a direct-address table for n items: at most 4 offsets per item (16 bits
    at least, whose 256 KiB of offsets stay in cache), never over MAX_DIRECT_BITS."""
    return min(MAX_DIRECT_BITS, max(16, int(np.ceil(np.log2(max(n, 2)))) + 2))


def _hash(keys: np.ndarray, bits: int) -> np.ndarray:
    """Fibonacci hash of each key into [0, 2^bits). Hashing matters for real codes: they crowd
    together, and slots taken from a plain key prefix would collide by the thousand."""
    if bits == 0:
        return np.zeros(len(keys), dtype=np.int64)
    return ((np.asarray(keys, dtype=np.uint64) * FIBONACCI) >> np.uint64(64 - bits)).astype(np.int64)


def _open_addressing(distinct: np.ndarray, key_type) -> tuple[np.ndarray, np.ndarray, int]:
    """Linear-probing table of sorted distinct keys, at least four slots per key: (slots, run index
    of each slot, the empty marker - a value that is not a key)."""
    bits = int(np.ceil(np.log2(max(len(distinct), 1)))) + 2
    empty = _absent_value(distinct)
    slots = np.full(1 << bits, empty, dtype=key_type)
    slot_run = np.zeros(1 << bits, dtype=np.int64)
    todo, slot = np.arange(len(distinct)), _hash(distinct, bits)
    mask = (1 << bits) - 1
    while len(todo):
        # of the keys wanting a free slot this round, one per slot gets it; the rest move on
        free = slots[slot] == empty
        claim, winner = np.unique(slot[free], return_index=True)
        placed = np.flatnonzero(free)[winner]
        slots[claim] = distinct[todo[placed]].astype(key_type)
        slot_run[claim] = todo[placed]
        left = np.ones(len(todo), bool)
        left[placed] = False
        todo, slot = todo[left], (slot[left] + 1) & mask
    return slots, slot_run, empty


def _absent_value(sorted_keys: np.ndarray) -> int:
    """The smallest non-negative integer that is not among the sorted distinct keys."""
    if len(sorted_keys) == 0 or sorted_keys[0] > 0:
        return 0
    gaps = np.flatnonzero(np.diff(sorted_keys) > 1)
    return int(sorted_keys[gaps[0]] + 1) if len(gaps) else int(sorted_keys[-1]) + 1


def expand_ranges(start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [start_i, stop_i): (i repeated per element, every element), both int64."""
    counts = (stop - start).astype(np.int64)
    total = int(counts.sum())
    if total == len(counts):  # every range holds one element: the common case of sparse tables
        return np.arange(len(start), dtype=np.int64), start.astype(np.int64)
    owner = np.repeat(np.arange(len(start), dtype=np.int64), counts)
    # position inside each range = global index - index where that range begins in the output
    begins = np.cumsum(counts) - counts
    elements = np.arange(total, dtype=np.int64) - np.repeat(begins - start, counts)
    return owner, elements
