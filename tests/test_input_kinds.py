"""Input kinds are a declared seam: a kind is one module (a subclass of InputKind) plus one
`register(...)` line, and every entry point - the loaders, the Python API, the CLI - then takes it.

The kind here, CSV rows of numbers, lives in a module of its own written by the test; the only
other line is its registration."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from semhash.hashing import inputs
from semhash.hashing.errors import ParameterError

ROWS_KIND = textwrap.dedent(
    """
    from pathlib import Path

    import numpy as np
    import torch

    from semhash.hashing.dataset import Dataset
    from semhash.hashing.inputs.base import InputKind


    class Rows(InputKind):
        name, keyword, flag, help = "rows", "rows", "--rows", "Query with the rows of a .csv file."
        repeat = False
        source_flag, source_help = "--csv", "A .csv of numbers, one item a row."

        def reads(self, path):
            return Path(path).suffix == ".csv"

        def load(self, path, labels=None, spec=None):
            x = torch.from_numpy(np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2))
            return Dataset(Path(path).stem, x, None, "as written", str(path), kind=self.name)

        def queries(self, given):
            x = np.loadtxt(given, delimiter=",", dtype=np.float32, ndmin=2)
            return x, [f"row {i}" for i in range(len(x))]

        def inputs(self, spec, items, names=None):
            return np.asarray(items, dtype=np.float32).reshape(len(items), *spec.shape)
    """
)
REGISTER = "import semhash.hashing.inputs as kinds, rows_kind; kinds.register(rows_kind.Rows()); "


@pytest.fixture
def rows(tmp_path):
    """A folder holding the kind's module and clustered rows: 3 clusters of 40 rows in 16-d."""
    (tmp_path / "rows_kind.py").write_text(ROWS_KIND)
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (3, 16))
    x = np.concatenate([c + rng.normal(0, 0.5, (40, 16)) for c in centres])
    np.savetxt(tmp_path / "items.csv", x, delimiter=",")
    np.savetxt(tmp_path / "query.csv", x[[5, 50, 90]] + 0.01, delimiter=",")
    return tmp_path


def own_rows_found(result: dict) -> bool:
    """Each query (rows 5, 50 and 90, moved by 0.01) finds the row it was made from at distance 0
    (among the others of its cluster that share its code)."""
    found = [{h["key"] for h in q["hits"]} for q in result["queries"]]
    return len(found) == 3 and all(f"items/{row}" in keys for row, keys in zip((5, 50, 90), found))


def semhash(folder, *args):
    """The semhash command with the rows kind registered first, as a plugin would register it."""
    code = REGISTER + "from semhash.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], cwd=folder, capture_output=True, text=True, timeout=120
    )


def test_a_registered_kind_is_trained_on_indexed_and_searched_from_the_command_line(rows):
    assert (
        semhash(rows, "train", "--csv", "items.csv", "--method", "itq", "--bits", "16", "-o", "m.semhash").returncode
        == 0
    )
    built = semhash(rows, "index", "build", "items.db", "--model", "m.semhash", "--csv", "items.csv")
    assert built.returncode == 0, built.stderr
    found = semhash(rows, "search", "items.db", "--rows", "query.csv", "--radius", "0", "--format", "json")
    assert found.returncode == 0, found.stderr
    assert own_rows_found(json.loads(found.stdout))
    assert "--rows" in semhash(rows, "search", "--help").stdout and "--csv" in semhash(rows, "train", "--help").stdout


def test_a_registered_kind_is_a_keyword_of_the_python_api(rows, monkeypatch):
    import semhash as api

    monkeypatch.syspath_prepend(str(rows))
    monkeypatch.setattr(inputs.base, "_KINDS", dict(inputs.base._KINDS))  # registered for this test only
    import rows_kind

    inputs.register(rows_kind.Rows())
    api.train("itq", str(rows / "items.csv"), rows / "m.semhash", bits=16)
    api.build_index(rows / "items.db", rows / "m.semhash", str(rows / "items.csv"))
    assert own_rows_found(api.search(rows / "items.db", rows=str(rows / "query.csv"), radius=0))
    labels, codes = api.encode(rows / "m.semhash", rows=str(rows / "query.csv"))
    assert labels == ["row 0", "row 1", "row 2"] and codes.shape == (3, 2)


def test_a_keyword_no_kind_declares_is_one_clear_error(tmp_path):
    import semhash as api

    with pytest.raises(ParameterError, match="unknown query 'photos': use one of images, vectors"):
        api.search(tmp_path / "none.db", photos=["a.png"])
