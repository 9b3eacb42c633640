"""Bit packing, Hamming distances, integer keys and Hamming balls, checked against FAISS and brute force."""

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from semhash.hashing import codes
from semhash.hashing.errors import ParameterError

bit_lengths = st.sampled_from([8, 16, 24, 32, 40, 64, 72, 128, 256])


@st.composite
def code_sets(draw, n_min=1, n_max=20, bits=None):
    b = draw(bit_lengths) if bits is None else bits
    n = draw(st.integers(n_min, n_max))
    return draw(arrays(np.uint8, (n, b // 8)))


@given(st.data())
def test_pack_unpack_round_trip(data):
    bits = data.draw(bit_lengths)
    b = data.draw(arrays(np.uint8, (data.draw(st.integers(1, 10)), bits), elements=st.integers(0, 1)))
    packed = codes.pack(b)
    assert packed.shape == (len(b), bits // 8) and packed.dtype == np.uint8
    np.testing.assert_array_equal(codes.unpack(packed), b)


def test_bit_order_is_faiss_order():
    # faiss.pack_bitstrings writes bit i of a code to byte i // 8, position i % 8.
    bits = np.zeros((1, 16), dtype=np.uint8)
    bits[0, [0, 9]] = 1
    assert codes.pack(bits).tolist() == [[1, 2]]
    np.testing.assert_array_equal(codes.pack(bits), faiss.pack_bitstrings(bits.astype(np.int32), 1))


@settings(max_examples=50)
@given(st.data())
def test_hamming_equals_faiss_index_binary_flat(data):
    bits = data.draw(bit_lengths)
    db = data.draw(code_sets(bits=bits))
    q = data.draw(code_sets(bits=bits, n_max=5))
    index = faiss.IndexBinaryFlat(bits)
    index.add(db)
    dist, ids = index.search(q, len(db))
    ours = codes.hamming(q, db)
    np.testing.assert_array_equal(np.take_along_axis(ours, ids, axis=1), dist)
    n = min(len(q), len(db))
    np.testing.assert_array_equal(codes.hamming_rows(q[:n], db[:n]), ours[np.arange(n), np.arange(n)])


@given(code_sets(bits=64) | code_sets(bits=32) | code_sets(bits=8))
def test_int_keys_round_trip_and_bit_i_is_key_bit_i(c):
    keys = codes.to_int(c)
    np.testing.assert_array_equal(codes.from_int(keys, c.shape[1] * 8), c)
    bits = codes.unpack(c)
    for i in range(bits.shape[1]):
        np.testing.assert_array_equal((keys >> np.uint64(i)) & np.uint64(1), bits[:, i])


@given(st.data())
def test_substrings_are_disjoint_and_cover_the_code(data):
    bits = data.draw(bit_lengths)
    m = data.draw(st.integers(max(1, -(-bits // 64)), 8))
    c = data.draw(code_sets(bits=bits))
    keys = codes.substrings(c, m)
    bounds = codes.substring_bounds(bits, m)
    assert bounds[0][0] == 0 and bounds[-1][1] == bits
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    # Hamming distance of the codes = sum of substring distances (what multi-index hashing relies on).
    total = sum(np.bitwise_count(keys[:, j, None] ^ keys[None, :, j]) for j in range(m))
    np.testing.assert_array_equal(total, codes.hamming(c, c))


@given(bits=st.integers(1, 20), r=st.integers(0, 4))
def test_flip_masks_enumerate_the_ball_exactly_once(bits, r):
    masks = codes.flip_masks(bits, r)
    assert len(masks) == len(set(masks.tolist())) == codes.ball_size(bits, r)
    weights = np.bitwise_count(masks)
    assert (weights <= r).all() and (np.diff(weights.astype(int)) >= 0).all()
    # every code within distance r of a centre is centre ^ some mask: compare with brute force
    centre = np.uint64(0b1011 % (1 << bits))
    everything = np.arange(1 << bits, dtype=np.uint64)
    brute = everything[np.bitwise_count(everything ^ centre) <= r]
    np.testing.assert_array_equal(np.sort(centre ^ masks), brute)


@given(bits=st.sampled_from([8, 16, 32, 64, 128]), r=st.integers(0, 2))
def test_packed_masks_match_integer_masks(bits, r):
    packed = codes.flip_masks_packed(bits, r)
    assert (codes.hamming(packed, np.zeros((1, bits // 8), np.uint8))[:, 0] <= r).all()
    if bits <= 64:
        np.testing.assert_array_equal(codes.to_int(packed), codes.flip_masks(bits, r))
    assert len({row.tobytes() for row in packed}) == codes.ball_size(bits, r)


@pytest.mark.parametrize("bits", [0, 7, 12, 264, -8])
def test_bad_code_lengths_are_refused(bits):
    with pytest.raises(ParameterError, match="multiple of 8"):
        codes.check_bits(bits)


def test_a_ball_too_large_to_enumerate_is_refused_with_advice():
    with pytest.raises(ParameterError, match="smaller radius or k-NN"):
        codes.flip_masks(64, 8)
