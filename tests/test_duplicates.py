"""Near-duplicates: codes propose, signatures decide, groups never chain.

    find_duplicates("vecs.db", threshold=0.95, radius=16, pairs=True)   # every pair at cosine >= 0.95
    find_duplicates("b.db", against="a.db")                             # set B against set A

Checked against brute force on small sets (at the full code length every pair is a candidate, so
the verified pairs must be exactly those a full similarity matrix holds, with the same scores),
on planted copies of generated pictures (JPEG, a 2-pixel shift, brightening, a 5% crop) found and
nothing else, and against a set B (no pair inside one set).
"""

from __future__ import annotations

import io
import warnings
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import semhash
from semhash.benchmarks.pictures import picture
from semhash.hashing.errors import ParameterError, StoreError
from semhash.index_store.duplicates import find_duplicates
from semhash.index_store.duplicates.groups import groups_of
from semhash.index_store.index import Index


def vectors_with_copies(rng, n: int, copies: int, d: int = 24) -> np.ndarray:
    """n random unit directions, the first `copies` of them again with a little noise."""
    base = rng.normal(size=(n, d)).astype(np.float32)
    near = base[:copies] + 0.05 * rng.normal(size=(copies, d)).astype(np.float32)
    return np.concatenate([base, near])


def features_index(tmp_path, x: np.ndarray, name: str = "vecs", model=None):
    np.save(tmp_path / f"{name}.npy", x)
    if model is None:
        model = tmp_path / "m.semhash"
        semhash.train("itq", str(tmp_path / f"{name}.npy"), model, bits=16)
    db = tmp_path / f"{name}.db"
    semhash.build_index(db, model, str(tmp_path / f"{name}.npy"))
    return str(db), model


def cosine(x: np.ndarray) -> np.ndarray:
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    return u @ u.T


def test_verified_pairs_are_every_pair_above_the_threshold_with_equal_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    x = vectors_with_copies(np.random.default_rng(0), 120, 30)
    db, _ = features_index(tmp_path, x)
    got = find_duplicates(db, threshold=0.95, radius=16, pairs=True)  # radius = every bit: all pairs candidates
    keys = [f"vecs/{i}" for i in range(len(x))]
    sim = cosine(x)
    want = {frozenset((keys[i], keys[j])): sim[i, j] for i, j in combinations(range(len(x)), 2) if sim[i, j] >= 0.95}
    found = {frozenset((p["a"], p["b"])): p["score"] for p in got["pairs"]}
    assert set(found) == set(want) and len(want) >= 30
    assert all(abs(found[k] - want[k]) < 2e-3 for k in want)  # float16 signatures
    assert got["units"] == "cosine" and got["candidates"] == len(x) * (len(x) - 1) // 2


def test_groups_keep_one_item_and_every_member_is_within_the_threshold_of_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rng = np.random.default_rng(1)
    chain = np.cumsum(0.3 * rng.normal(size=(40, 24)), axis=0).astype(np.float32) + 3  # a walk: neighbours chain
    db, _ = features_index(tmp_path, chain)
    got = find_duplicates(db, threshold=0.97, radius=16, keep="first")
    sim, at = cosine(chain), {f"vecs/{i}": i for i in range(len(chain))}
    seen = set()
    for g in got["groups"]:
        assert g["keep"] == min([g["keep"], *g["remove"]])  # the first key is kept
        for member, score in zip(g["remove"], g["scores"]):
            assert sim[at[g["keep"]], at[member]] >= 0.97 - 1e-3 and score >= 0.97 - 1e-3
        assert not seen & {g["keep"], *g["remove"]}
        seen |= {g["keep"], *g["remove"]}


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 30).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=80),
            st.permutations(range(n)),
        )
    )
)
def test_groups_never_chain_whatever_the_pairs(case):
    n, links, order = case
    links = [(a, b) for a, b in links if a != b]
    a = np.array([p[0] for p in links], np.int64)
    b = np.array([p[1] for p in links], np.int64)
    verified = {frozenset(p) for p in links}
    rank = np.array(order, np.int64)
    members = []
    for rep, group, _ in groups_of(a, b, np.ones(len(a)), rank):
        assert all(frozenset((rep, m)) in verified for m in group.tolist())  # a pair with the representative itself
        assert all(rank[rep] < rank[m] for m in group.tolist())  # the rule's best is kept
        members += [rep, *group.tolist()]
    assert len(members) == len(set(members))


def test_set_b_against_set_a_pairs_only_across_the_sets(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rng = np.random.default_rng(2)
    a = vectors_with_copies(rng, 60, 20)  # A holds duplicates of its own too
    b = np.concatenate([a[:10] + 0.03 * rng.normal(size=(10, 24)).astype(np.float32), rng.normal(size=(30, 24))])
    db_a, model = features_index(tmp_path, a, "a")
    db_b, _ = features_index(tmp_path, b.astype(np.float32), "b", model)
    got = find_duplicates(db_a, against=db_b, against_name="default", threshold=0.95, radius=16, pairs=True)
    assert got["pairs"] and all(p["a"].startswith("a/") and p["b"].startswith("b/") for p in got["pairs"])
    assert {p["b"] for p in got["pairs"]} >= {f"b/{i}" for i in range(10)}
    removed = [k for g in got["groups"] for k in g["remove"]]
    assert all(k.startswith("b/") for k in removed) and len(removed) == len(set(removed))


TRANSFORMS = {
    "jpeg": lambda im: _jpeg(im, 40),
    "shift": lambda im: im.transform(im.size, 0, (1, 0, -2, 0, 1, 0)),
    "brighter": lambda im: im.point(lambda v: min(255, int(v * 1.2))),
    "crop": lambda im: im.crop((2, 2, im.width - 2, im.height - 2)).resize(im.size),
}


def _jpeg(im, quality: int):
    from PIL import Image

    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def planted_folder(tmp_path, seed: int, kinds) -> tuple:
    """(folder, planted pairs): 40 generated pictures in tmp_path/photos, the first ones copied by
    TRANSFORMS[kind] for each of kinds in turn."""
    rng = np.random.default_rng(seed)
    folder = tmp_path / "photos"
    folder.mkdir()
    planted = set()
    for i in range(40):
        im = picture(rng, 400, 400).resize((96, 96))  # detail at the model's scale
        im.save(folder / f"{i:02d}.png")
        if i < len(kinds):
            TRANSFORMS[kinds[i]](im).save(folder / f"{i:02d}-{kinds[i]}.png")
            planted.add(frozenset((f"photos/{i:02d}.png", f"photos/{i:02d}-{kinds[i]}.png")))
    return folder, planted


def test_planted_copies_in_a_folder_are_all_found_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder, planted = planted_folder(tmp_path, 3, list(TRANSFORMS))
    model = tmp_path / "m.semhash"
    semhash.train("itq", str(folder), model, bits=16)
    got = find_duplicates(str(folder), model=model, radius=16, pairs=True)
    assert {frozenset((p["a"], p["b"])) for p in got["pairs"]} == planted
    assert got["units"] == "correlation" and len(got["groups"]) == len(planted)


def test_an_index_without_signatures_is_decided_by_codes_and_refuses_a_threshold(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    codes = np.array([[0, 0], [0, 1], [255, 255]], np.uint8)
    Index.create(tmp_path / "bare.db", "default", 16).add(["x", "y", "z"], codes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # bare codes: no kind, no verifier, nothing to warn about
        got = find_duplicates(tmp_path / "bare.db", radius=1)
    assert got["groups"] == [{"keep": "x", "remove": ["y"], "scores": [1.0]}] and got["units"] == "Hamming distance"
    with pytest.raises(StoreError, match="no signatures"):
        find_duplicates(tmp_path / "bare.db", threshold=0.9)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"threshold": 7.0}, "between -1 and 1"),
        ({"keep": "newest"}, "unknown keep rule"),
        ({"radius": -1}, "radius must be between"),
        ({"max_pairs": -5}, "max_pairs"),
    ],
)
def test_bad_parameters_are_one_line_errors(tmp_path, monkeypatch, options, message):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    db, _ = features_index(tmp_path, vectors_with_copies(np.random.default_rng(4), 30, 5))
    with pytest.raises(ParameterError, match=message) as info:
        find_duplicates(db, **options)
    assert "\n" not in str(info.value)


def edited(rng, words: list[str], share: float) -> list[str]:
    """words with about `share` of them replaced by another word of the vocabulary."""
    out = list(words)
    for i in rng.choice(len(out), int(share * len(out)), replace=False):
        out[i] = f"w{rng.integers(0, 500)}"
    return out


def test_planted_edited_copies_in_a_text_corpus_are_all_found_and_nothing_else(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rng = np.random.default_rng(5)
    docs = {f"d{i}": [f"w{w}" for w in rng.integers(0, 500, 120)] for i in range(60)}
    planted = set()
    for i, share in enumerate([0.02, 0.05, 0.05, 0.08]):
        docs[f"d{i}-copy"] = edited(rng, docs[f"d{i}"], share)
        planted.add(frozenset((f"d{i}", f"d{i}-copy")))
    with open(tmp_path / "docs.jsonl", "w") as f:
        for key, words in docs.items():
            f.write(json.dumps({"key": key, "text": " ".join(words)}) + "\n")
    semhash.train("itq", str(tmp_path / "docs.jsonl"), tmp_path / "t.semhash", bits=16)
    semhash.build_index(tmp_path / "docs.db", tmp_path / "t.semhash", str(tmp_path / "docs.jsonl"))
    got = find_duplicates(tmp_path / "docs.db", radius=16, pairs=True)
    assert got["units"] == "Jaccard"
    assert {frozenset((p["a"], p["b"])) for p in got["pairs"]} == planted


def test_a_minhash_sketch_estimates_the_jaccard_similarity_of_word_shingles():
    from semhash.hashing.signatures.texts import jaccard, minhash, shingles

    rng = np.random.default_rng(6)
    base = [f"w{w}" for w in rng.integers(0, 1000, 300)]
    texts = [" ".join(base), *(" ".join(edited(rng, base, share)) for share in (0.02, 0.1, 0.3, 1.0))]
    sketches = minhash(texts)
    for text, sketch in zip(texts[1:], sketches[1:]):
        a, b = shingles(texts[0]), shingles(text)
        exact = len(np.intersect1d(a, b)) / len(np.union1d(a, b))
        assert abs(jaccard(sketches[:1], sketch[None])[0] - exact) < 0.12  # 128 hashes: sd <= 0.045
    assert np.array_equal(minhash(texts[1:3]), minhash(texts)[1:3])  # a sketch is the text's alone


def test_an_image_signature_holds_a_small_digits_shift_and_a_photos_crop_apart_from_other_pictures():
    from PIL import Image

    from semhash.hashing.signatures.images import IMAGES

    rng = np.random.default_rng(5)

    def inputs(*images) -> np.ndarray:  # the model's inputs: (n, 1, H, W) in [0, 1]
        return np.stack([np.asarray(im.convert("L"), np.float32)[None] / 255 for im in images])

    # a 28-pixel digit-like picture (blocks inside a 4-pixel blank margin) shifted by 4 pixels:
    # padded, not resampled, it is the same pixels moved (resampled, 4.6 blurred pixels)
    blocks = np.pad(np.kron(rng.random((5, 5)) > 0.5, np.ones((4, 4))), 4)
    digit = Image.fromarray((blocks * 255).astype(np.uint8))
    moved = digit.transform(digit.size, 0, (1, 0, -4, 0, 1, 3))
    # a photo cropped by 8% a side, brought back to the model's 32 pixels: a zoom of 1.19
    photo = picture(rng, 320, 240)
    cropped = photo.crop((26, 19, 294, 221)).resize((32, 32), Image.Resampling.BILINEAR)
    other = picture(rng, 320, 240).resize((32, 32), Image.Resampling.BILINEAR)
    small = photo.resize((32, 32), Image.Resampling.BILINEAR)
    d = IMAGES.make(inputs(digit, moved))
    p = IMAGES.make(inputs(small, cropped, other))
    assert IMAGES.similarity(d[:1], d[1:])[0] >= 0.95
    assert IMAGES.similarity(p[[0, 0]], p[[1, 2]]).round(2).tolist() >= [0.9, -1.0]
    assert IMAGES.similarity(p[[0, 1]], p[[2, 2]]).max() < 0.8


def test_copies_whose_codes_moved_are_found_through_the_signatures_keys(tmp_path, monkeypatch):
    # radius 0: the code ball holds equal codes only; each item's nearest signature keys (images:
    # low-frequency magnitudes) are verified too, and their pairs held to the same threshold
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder, planted = planted_folder(tmp_path, 4, ["shift", "brighter", "jpeg"])
    model = tmp_path / "m.semhash"
    semhash.train("itq", str(folder), model, bits=32)
    got = find_duplicates(str(folder), model=model, radius=0, pairs=True)
    assert {frozenset((p["a"], p["b"])) for p in got["pairs"]} == planted
    assert got["candidates"] >= 40  # every item's nearest keys were verified


def test_short_texts_sketches_leave_out_the_bins_both_lack():
    """One-permutation sketches: a text of a few words fills few bins; two such texts are compared
    on the bins either fills, so equal short texts score 1 and unrelated ones 0."""
    from semhash.hashing.signatures.texts import jaccard, minhash

    a, same, other, empty = minhash(["one two three four", "One, two; three four!", "five six seven", ""])
    assert jaccard(a[None], same[None])[0] == 1.0  # case and punctuation are not words
    assert jaccard(a[None], other[None])[0] == 0.0
    assert jaccard(empty[None], empty[None])[0] == 1.0  # two empty texts are the same text


def test_the_derived_radius_stays_within_the_candidate_budget(monkeypatch):
    from semhash.hashing.signatures import FEATURES
    from semhash.index_store.duplicates import radius as radius_rule
    from semhash.index_store.engine.searcher import Searcher

    rng = np.random.default_rng(3)
    codes = np.packbits(rng.random((600, 16)) < 0.5, axis=1)  # random 16-bit codes: crowded balls
    s, sig = Searcher(np.arange(600), codes), FEATURES.make(rng.normal(size=(600, 8)))
    loose, _ = radius_rule.derive_radius(s, sig, FEATURES, -1.0)  # every pair verifies
    monkeypatch.setattr(radius_rule, "CANDIDATES", 2)
    tight, rule = radius_rule.derive_radius(s, sig, FEATURES, -1.0)
    assert tight < loose and "capped" in rule
    _, _, dist = s.run_radius_plan(codes, tight, *s.plan(tight, len(codes)))
    assert (len(dist) - len(codes)) / len(codes) <= 2 * 1.5  # the whole index's mean ball, near the sample's


def test_sketch_bands_propose_every_pair_sharing_a_band_once():
    """Band candidates against brute force: items agreeing on every entry of some band, within one
    set (each pair once) and across two (one item of each)."""
    from semhash.hashing.signatures.texts import BAND_ROWS, EMPTY, band_pairs, share_a_band

    rng = np.random.default_rng(4)
    sig = rng.integers(0, 3, size=(80, 3 * BAND_ROWS)).astype(np.uint16)  # few values: many shared bands
    sig[5] = EMPTY  # an item all of whose bands are empty proposes nothing
    bands = sig.reshape(80, 3, BAND_ROWS)
    shares = lambda i, j: (bands[i] == bands[j]).all(axis=1).any() and 5 not in (i, j)  # noqa: E731
    got = np.concatenate([np.c_[qi, pos] for qi, pos in band_pairs(sig)])
    expected = {(i, j) for i, j in combinations(range(80), 2) if shares(i, j)}
    assert {(int(i), int(j)) for i, j in got} == expected and len(got) == len(expected)
    across = np.concatenate([np.c_[qi, pos] for qi, pos in band_pairs(sig[:30], sig[30:])])
    expected = {(j - 30, i) for i in range(30) for j in range(30, 80) if shares(i, j)}
    assert {(int(q), int(p)) for q, p in across} == expected and len(across) == len(expected)
    i, j = np.array(list(combinations(range(80), 2))).T  # the pair predicate the radius rule asks
    assert share_a_band(sig[i], sig[j]).tolist() == [shares(a, b) for a, b in zip(i, j)]


def test_a_radius_is_derived_for_the_pairs_the_signatures_do_not_propose(monkeypatch):
    """With every verified pair proposed by the signatures (covers), the derived radius is 0."""
    import dataclasses

    from semhash.hashing.signatures import FEATURES
    from semhash.index_store.duplicates import radius as radius_rule
    from semhash.index_store.engine.searcher import Searcher

    rng = np.random.default_rng(3)
    codes = np.packbits(rng.random((600, 16)) < 0.5, axis=1)
    s, sig = Searcher(np.arange(600), codes), FEATURES.make(rng.normal(size=(600, 8)))
    plain, _ = radius_rule.derive_radius(s, sig, FEATURES, 0.5)
    everything = dataclasses.replace(FEATURES, covers=lambda a, b: np.ones(len(a), bool))
    nothing = dataclasses.replace(FEATURES, covers=lambda a, b: np.zeros(len(a), bool))
    assert plain > 0 and radius_rule.derive_radius(s, sig, nothing, 0.5)[0] == plain
    radius, rule = radius_rule.derive_radius(s, sig, everything, 0.5)
    assert radius == 0 and "the signatures propose 100%" in rule


def test_pairs_are_scored_a_bounded_chunk_of_signatures_at_a_time(monkeypatch):
    import dataclasses

    from semhash.hashing import signatures

    rng = np.random.default_rng(0)
    sig = signatures.unit_rows(rng.normal(size=(50, 16)))  # 32 bytes a row
    ia, ib = rng.integers(0, 50, 1000), rng.integers(0, 50, 1000)
    sizes = []

    def counted(a, b):
        sizes.append(len(a))
        return signatures.dot_rows(a, b)

    verifier = dataclasses.replace(signatures.FEATURES, similarity=counted)
    monkeypatch.setattr(signatures, "GATHER_BYTES", 640)  # 10 pairs' rows a chunk
    np.testing.assert_array_equal(verifier.score_pairs(sig, ia, sig, ib), signatures.dot_rows(sig[ia], sig[ib]))
    assert max(sizes) == 10 and sum(sizes) == 1000
    assert len(verifier.score_pairs(sig, ia[:0], sig, ib[:0])) == 0
