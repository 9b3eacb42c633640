"""PCAH, ITQ and LSH: one interface, self-describing artifacts, and the quality order the literature reports."""

import numpy as np
import pytest

from semhash.hashing import artifact
from semhash.hashing.baselines import BASELINES, ITQ, LSH, PCAH
from semhash.hashing.errors import ArtifactError, DataError
from semhash.hashing.methods import load_hasher
from semhash.hashing.metrics import evaluate, label_relevance


def quality(hasher, train, test):
    rel = label_relevance(test.labels, train.labels)
    return evaluate(hasher.encode(test), hasher.encode(train), rel).map_all


@pytest.mark.parametrize("method", sorted(BASELINES))
def test_fit_encode_save_load_gives_identical_codes(method, digits, tmp_path):
    train, test = digits
    hasher = BASELINES[method](bits=32, seed=3).fit(train)
    c = hasher.encode(test)
    assert c.shape == (len(test), 4) and c.dtype == np.uint8
    path = hasher.save(tmp_path / f"{method}.semhash")
    again = load_hasher(path)
    assert type(again) is type(hasher) and again.bits == 32 and again.spec_ == hasher.spec_
    np.testing.assert_array_equal(again.encode(test), c)
    header = artifact.read_header(path)
    assert header["method"] == method and header["input"]["shape"] == [1, 8, 8]
    assert header["input"]["fingerprint"] == train.fingerprint and header["library_version"]


def test_encode_is_pure_and_codes_are_balanced_for_itq(digits):
    train, _ = digits
    hasher = ITQ(bits=16).fit(train)
    first = hasher.encode(train)
    np.testing.assert_array_equal(hasher.encode(train), first)
    from semhash.hashing.codes import unpack

    on = unpack(first).mean(axis=0)
    assert ((on > 0.2) & (on < 0.8)).all()


def test_itq_beats_pcah_and_lsh_on_digits(digits):
    train, test = digits
    scores = {m: quality(BASELINES[m](bits=32).fit(train), train, test) for m in BASELINES}
    assert scores["itq"] > scores["pcah"] and scores["itq"] > scores["lsh"]
    assert scores["lsh"] > 0.2  # chance is ~0.1 with 10 balanced classes


def test_pca_codes_cannot_have_more_bits_than_input_dimensions(digits):
    with pytest.raises(DataError, match="at least 128 dimensions"):
        PCAH(bits=128).fit(digits[0])


def test_encode_refuses_items_of_another_shape(digits):
    hasher = LSH(bits=16).fit(digits[0])
    with pytest.raises(DataError, match=r"item shape \(1, 28, 28\).*trained on \(1, 8, 8\)"):
        hasher.encode(np.zeros((2, 1, 28, 28), np.float32))


def test_fit_refuses_nan(rng):
    x = rng.standard_normal((20, 10)).astype(np.float32)
    x[3, 4] = np.nan
    with pytest.raises(DataError, match="NaN"):
        LSH(bits=8).fit(x)


def test_loading_refuses_missing_truncated_and_foreign_files(digits, tmp_path):
    with pytest.raises(ArtifactError, match="no such model file"):
        load_hasher(tmp_path / "absent.semhash")
    good = ITQ(bits=16).fit(digits[0]).save(tmp_path / "good.semhash")
    truncated = tmp_path / "truncated.semhash"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="not a semhash model file"):
        load_hasher(truncated)
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ArtifactError, match="no semhash header"):
        load_hasher(tmp_path / "foreign.safetensors")


def test_loading_refuses_a_newer_format_and_mismatched_tensors(digits, tmp_path):
    hasher = PCAH(bits=16).fit(digits[0])
    state = hasher._state()
    header = {
        "method": "pcah",
        "bits": 16,
        "config": hasher.config(),
        "input": {"shape": [1, 8, 8], "normalization": "x", "fingerprint": "f"},
    }
    artifact.save(tmp_path / "wrong.semhash", {**state, "projection": state["projection"][:, :8]}, header)
    with pytest.raises(ArtifactError, match="corrupt pcah model"):
        load_hasher(tmp_path / "wrong.semhash")
    future = tmp_path / "future.semhash"
    artifact.save(future, state, {**header, "format_version": 99})
    with pytest.raises(ArtifactError, match="newer semhash"):
        load_hasher(future)


def test_save_is_atomic_and_leaves_no_temp_files(digits, tmp_path):
    LSH(bits=8).fit(digits[0]).save(tmp_path / "m.semhash")
    LSH(bits=16).fit(digits[0]).save(tmp_path / "m.semhash")  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["m.semhash"]
    assert load_hasher(tmp_path / "m.semhash").bits == 16


def test_pca_of_wide_inputs_stays_within_a_few_copies_of_the_input(rng):
    """20,000 dimensions: the covariance the exact method would form is 3.2 GB (80x the input);
    the randomized method's peak stays under 4x the input's 40 MB."""
    import tracemalloc

    from semhash.hashing.pca import principal_directions

    x = rng.standard_normal((500, 20_000)).astype(np.float32)
    tracemalloc.start()
    try:
        mean, directions = principal_directions(x, 16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * x.nbytes, f"peak {peak / 1e6:.0f} MB"
    assert directions.shape == (20_000, 16) and np.allclose(directions.T @ directions, np.eye(16), atol=1e-3)
    assert np.allclose(mean, x.mean(axis=0), atol=1e-5)
