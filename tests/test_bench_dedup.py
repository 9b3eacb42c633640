"""`semhash bench dedup`'s planting and scoring on tiny corpora, and one tiny run end to end."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from semhash.benchmarks import dedup_peers, dedup_planted
from semhash.cli.main import app


def _topic_docs(n: int = 60, length: int = 80):
    rng = np.random.default_rng(5)
    words = [f"w{k}" for k in range(500)]
    docs = [list(rng.choice(words, size=length)) for _ in range(n)]
    return docs, np.arange(n) % 3


def test_planted_copies_come_from_untouched_documents_and_make_the_truth():
    docs, labels = _topic_docs()
    items, origin, edit = dedup_planted.plant_texts(np.random.default_rng(0), docs, labels, n=100, copied=10)
    copies = np.flatnonzero(edit != "")
    assert len(items) == 100 and 10 <= len(copies) <= 30
    assert (edit[origin[copies]] == "").all()  # every copy's origin is an untouched item
    assert set(edit[copies]) <= set(dedup_planted.TEXT_EDITS)
    untouched = np.flatnonzero(edit == "")
    assert (origin[untouched] == untouched).all()
    i, j = dedup_planted.truth_pairs(origin)
    sizes = np.bincount(origin)
    assert len(i) == sum(k * (k - 1) // 2 for k in sizes)  # originals with their copies, copies among themselves
    assert (origin[i] == origin[j]).all() and (i < j).all()


def test_text_edits_change_what_they_say():
    rng = np.random.default_rng(1)
    words = [f"w{k}" for k in range(200)]
    vocab = np.array(["x", "y", "z"], dtype=object)
    assert len(dedup_planted.edit_text(rng, words, "delete", vocab)[0]) < 200
    assert len(dedup_planted.edit_text(rng, words, "insert", vocab)[0]) > 200
    replaced, rate = dedup_planted.edit_text(rng, words, "replace", vocab)
    assert len(replaced) == 200 and 0.0 < rate <= 0.4
    reordered = dedup_planted.edit_text(rng, words, "reorder", vocab)[0]
    assert sorted(reordered) == sorted(words) and reordered != words
    header = dedup_planted.edit_text(rng, words, "header", vocab)[0]
    assert header[:2] == ["subject", "re"] and header[-200:] == words


def test_distinct_drops_a_documents_near_copy_already_in_the_corpus():
    docs, _ = _topic_docs(20)
    docs = docs + [docs[3][:70]]  # a repost: most of document 3
    assert list(dedup_planted.distinct(docs)) == list(range(20))


def _truth_as_pairs(origin, score=1.0):
    i, j = dedup_planted.truth_pairs(origin)
    return {"i": i, "j": j, "score": np.full(len(i), score)}


def test_scoring_perfect_empty_and_noisy_methods():
    origin = np.array([0, 1, 2, 0, 0, 2, 6, 7])
    edit = np.array(["", "", "", "jpeg", "shift", "jpeg", "", ""], dtype=object)
    perfect = dedup_planted.per_edit(_truth_as_pairs(origin), origin, edit, None)
    assert set(perfect) == {"all", "jpeg", "shift"}
    assert all(r["f1"] == 1.0 for r in perfect.values())
    nothing = {"i": np.zeros(0, int), "j": np.zeros(0, int), "score": np.zeros(0)}
    assert all(r["recall"] == 0.0 for r in dedup_planted.per_edit(nothing, origin, edit, None).values())
    noisy = _truth_as_pairs(origin)
    noisy = {k: np.r_[noisy[k], v] for k, v in {"i": [1, 6], "j": [6, 7], "score": [0.2, 0.1]}.items()}
    everything = dedup_planted.per_edit(noisy, origin, edit, None)["all"]
    assert everything["recall"] == 1.0 and everything["precision"] == 4 / 6
    best = dedup_planted.best_threshold(dedup_planted.pr_curve(noisy, origin))
    assert best["f1"] == 1.0 and best["threshold"] == 1.0  # the junk scored lower: cut away


def test_a_transformations_score_leaves_out_the_other_transformations_copies():
    origin = np.array([0, 1, 0, 0])
    edit = np.array(["", "", "jpeg", "shift"], dtype=object)
    only_jpeg = {"i": np.array([0]), "j": np.array([2]), "score": np.ones(1)}
    rows = dedup_planted.per_edit(only_jpeg, origin, edit, None)
    assert rows["jpeg"]["f1"] == 1.0 and rows["shift"]["recall"] == 0.0
    assert rows["all"]["recall"] == pytest.approx(1 / 3)


def test_image_edits_and_planting_write_the_files_the_truth_names(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    im = Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), "RGB")
    assert dedup_planted.edit_image(rng, im, "shift")[0].size == (60, 40)
    assert dedup_planted.edit_image(rng, im, "crop")[0].size < (60, 40)
    assert dedup_planted.edit_image(rng, im, "jpeg")[1] == ".jpg"
    origin, edit = dedup_planted.plant_images(rng, [im] * 5, tmp_path, copied=2)
    files = dedup_peers.image_files(tmp_path)
    assert [int(f.stem) for f in files] == list(range(len(origin)))
    assert all(f.suffix == ".jpg" for f, e in zip(files, edit) if e == "jpeg")
    assert (edit[origin] == "").all()


def test_hamming_pairs_are_the_brute_force_ones():
    codes = np.random.default_rng(3).integers(0, 2**63, size=300, dtype=np.int64).astype(np.uint64)
    i, j, d = dedup_peers.hamming_pairs(codes, 26, block=64)
    brute = {(a, b) for a in range(300) for b in range(a + 1, 300) if bin(int(codes[a] ^ codes[b])).count("1") <= 26}
    assert set(zip(i.tolist(), j.tolist())) == brute and d.max() <= 26


def test_bench_dedup_tiny_measures_ours_and_the_imagehash_peers(tmp_path):
    pytest.importorskip("imagehash")
    out = CliRunner().invoke(app, ["bench", "dedup", "--tiny", "--part", "photos", "--out", str(tmp_path), "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads((tmp_path / "dedup.json").read_text())
    rows = result["corpora"][0]["rows"]
    names = [r["method"] for r in rows]
    assert names[0].startswith("semhash (") and names[1].startswith("semhash best")
    assert [n.split()[:2] for n in names[2:5]] == [["imagehash", h] for h in ("phash", "dhash", "whash")]
    edits = set(dedup_planted.IMAGE_EDITS) | {"all"}
    assert all(set(r["scores"]) == edits and r["seconds"] > 0 and r["peak_mb"] > 0 for r in rows)
    assert result["ratios"]["photos: time ours default / best peer"] > 0
    assert (tmp_path / "dedup.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_dedup_scale_tiny_measures_ours_and_faiss_on_both_corpora(tmp_path):
    out = CliRunner().invoke(
        app, ["bench", "dedup-scale", "--n", "10000", "--dims", "128", "--out", str(tmp_path), "--json"]
    )
    assert out.exit_code == 0, out.output
    result = json.loads((tmp_path / "dedup-scale.json").read_text())
    assert set(result["corpora"]) == {"spread", "clustered"}
    for part in result["corpora"].values():
        for method in ("ours", "faiss_ivf"):
            assert part[method]["seconds"] > 0 and part[method]["peak_mb"] > 0
            assert part[method]["precision"] > 0.9 and part[method]["recall"] > 0.9, (method, part[method])
    said = result["corpora"]["clustered"]["ours"]["said"]
    assert any("share their code" in line for line in said)  # the clustered corpus's codes crowd
    assert (tmp_path / "dedup-scale.png").read_bytes()[:4] == b"\x89PNG"
