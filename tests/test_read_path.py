"""A read command starts light: a small index's exact scan runs in numpy, with the very answers of
FAISS's scan, so that `semhash search` on it never imports FAISS (issue 25)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from semhash.index_store.engine import searcher as searcher_module
from semhash.index_store.engine.searcher import Searcher


def tied_codes(n: int, nbytes: int, seed: int) -> np.ndarray:
    """Codes of few distinct values, so that many items tie at the k-th distance."""
    return np.random.default_rng(seed).integers(0, 4, (n, nbytes), dtype=np.uint8)


def both_scans(monkeypatch, run):
    """run() once with numpy's scan and once with FAISS's."""
    answers = []
    for numpy_scans in (True, False):
        monkeypatch.setattr(searcher_module, "numpy_scans", lambda nq, n, use=numpy_scans: use)
        answers.append(run())
    return answers


@pytest.mark.parametrize("nbytes", [1, 4, 8, 16])
def test_numpy_scan_returns_what_faiss_scan_returns(monkeypatch, nbytes):
    codes = tied_codes(3000, nbytes, seed=nbytes)
    ids = np.arange(10, 3010, dtype=np.int64)
    s = Searcher(ids, codes)
    queries = codes[:20] ^ np.uint8(1)
    for k in (1, 7, 100, 3000):
        by_numpy, by_faiss = both_scans(monkeypatch, lambda k=k: s.scan_knn(queries, k))
        np.testing.assert_array_equal(by_numpy.ids, by_faiss.ids)
        np.testing.assert_array_equal(by_numpy.distances, by_faiss.distances)
    for radius in (0, 2, nbytes * 8):
        by_numpy, by_faiss = both_scans(monkeypatch, lambda r=radius: s.radius(queries, r))
        np.testing.assert_array_equal(by_numpy.offsets, by_faiss.offsets)
        np.testing.assert_array_equal(by_numpy.ids, by_faiss.ids)


def test_numpy_scans_only_small_scans_before_faiss_is_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "faiss", raising=False)
    assert searcher_module.numpy_scans(1, 60_000)
    assert not searcher_module.numpy_scans(10_000, 60_000)  # a batch: FAISS's scan is ~20x faster
    monkeypatch.setitem(sys.modules, "faiss", object())
    assert not searcher_module.numpy_scans(1, 60_000)  # imported already: nothing left to save


# Runs the command, then names the heavy modules the process imported, on stderr's last line.
COMMAND = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted({m.partition(".")[0] for m in sys.modules})), file=sys.stderr))
from semhash.cli.main import main
main()
"""


def run(cwd, *args) -> tuple[str, set[str]]:
    """(stdout, the top-level modules imported) of `semhash *args` run in cwd."""
    proc = subprocess.run([sys.executable, "-c", COMMAND, *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, set(json.loads(proc.stderr.splitlines()[-1]))


def test_search_of_a_small_index_imports_neither_faiss_nor_torch(tmp_path):
    run(tmp_path, "train", "--dataset", "digits", "--method", "itq", "--bits", 16, "-o", "itq.semhash")
    run(tmp_path, "index", "build", "itq.db", "--model", "itq.semhash", "--dataset", "digits")
    for _ in range(2):  # the first search also times the plans; the second reads them from the cache
        out, modules = run(tmp_path, "search", "itq.db", "--item", "digits/train/0", "-k", 3, "--format", "json")
        assert json.loads(out)["queries"][0]["hits"][0]["key"] == "digits/train/0"
        assert not modules & {"faiss", "torch", "sqlalchemy", "fastapi"}


def test_dedup_of_a_folder_stores_nothing_and_imports_no_database(tmp_path, rng):
    (tmp_path / "pics").mkdir()
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(tmp_path / "pics" / f"{i}.png")
    run(tmp_path, "train", "--images", "pics", "--method", "itq", "--bits", 16, "-o", "itq.semhash")
    (tmp_path / "pics" / "copy.png").write_bytes((tmp_path / "pics" / "1.png").read_bytes())
    out, modules = run(tmp_path, "dedup", "pics", "--model", "itq.semhash", "--format", "json")
    assert [(g["keep"], g["remove"]) for g in json.loads(out)["groups"]] == [("pics/1.png", ["pics/copy.png"])]
    assert not modules & {"faiss", "torch", "sqlalchemy", "scipy", "fastapi"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["itq.semhash", "pics"]
    assert len(list((tmp_path / "pics").iterdir())) == 21
