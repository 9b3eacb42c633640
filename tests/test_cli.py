"""The semhash command: help, version, data info, and one-line errors with a non-zero exit code."""

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from semhash.cli.main import app

runner = CliRunner()


def semhash(*args, env=None):
    """Run the real console entry point in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_help_and_version():
    assert "data" in runner.invoke(app, ["--help"]).output
    from semhash.hashing import __version__

    out = runner.invoke(app, ["--version"])
    assert out.exit_code == 0 and out.output.strip() == f"semhash {__version__}"


def test_data_info_json_for_digits():
    out = runner.invoke(app, ["data", "info", "digits", "--json"])
    info = json.loads(out.output)
    assert info["items"] == 1500 and info["shape"] == [1, 8, 8] and len(info["classes"]) == 10


def test_data_info_human_readable_for_a_feature_file(tmp_path):
    import numpy as np

    np.save(tmp_path / "f.npy", np.ones((5, 3), np.float32))
    out = runner.invoke(app, ["data", "info", str(tmp_path / "f.npy")])
    assert out.exit_code == 0 and "items: 5" in out.output and "shape: 3" in out.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "info", "nosuchset"], "error: unknown data set 'nosuchset'"),
        (
            ["data", "info", "mnist", "--data-root", "/nonexistent/root", "--no-download"],
            "not found in /nonexistent/root",
        ),
    ],
)
def test_errors_are_one_line_on_stderr_with_exit_code_1(args, message):
    proc = semhash(*args)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "info"], r"error: Missing argument '(name|NAME)'\."),  # click's wording varies
        (["data", "info", "digits", "--split", "dev"], r"error: Invalid value for '--split': 'dev' is not one of"),
        (["train", "--dataset", "digits", "--bits", "x", "-o", "m.semhash"], r"error: Invalid value for '--bits'"),
        (["search", "x.db", "--no-such-option"], r"error: No such option:? '?--no-such-option"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, message):
    proc = semhash(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and re.match(message, proc.stderr), proc.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A 16-bit ITQ model of digits and an index of its training split, made through the CLI."""
    folder = tmp_path_factory.mktemp("cli")
    model, db = folder / "d16.semhash", folder / "items.db"
    assert (
        runner.invoke(
            app, ["train", "--dataset", "digits", "--method", "itq", "--bits", "16", "-o", str(model)]
        ).exit_code
        == 0
    )
    out = runner.invoke(app, ["index", "build", str(db), "--model", str(model), "--dataset", "digits", "--json"])
    assert out.exit_code == 0, out.output
    return folder, model, db


def test_train_index_and_search_by_item(built):
    folder, model, db = built
    info = json.loads(runner.invoke(app, ["index", "info", str(db), "--json"]).output)
    assert info["items"] == 1500 and info["bits"] == 16
    out = runner.invoke(app, ["search", str(db), "--item", "digits/train/7", "-k", "4", "--json"])
    hits = json.loads(out.output)["queries"][0]["hits"]
    assert len(hits) == 4 and hits[0]["key"] == "digits/train/7" and hits[0]["distance"] == 0
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)


def test_search_with_an_exported_image_and_a_radius(built):
    folder, model, db = built
    png = folder / "q.png"
    assert runner.invoke(app, ["data", "export", "digits", "--item", "3", "-o", str(png)]).exit_code == 0
    out = runner.invoke(app, ["search", str(db), "--image", str(png), "--radius", "2", "-k", "1000", "--json"])
    hits = json.loads(out.output)["queries"][0]["hits"]
    assert hits and all(h["distance"] <= 2 for h in hits)
    table = runner.invoke(app, ["search", str(db), "--dataset", "digits", "--limit", "2", "-k", "3"])
    assert table.exit_code == 0 and table.output.count("query digits/test/") == 2


def test_index_add_verify_and_remove(built, tmp_path):
    import numpy as np

    folder, model, db = built
    feats = tmp_path / "extra.npy"
    np.save(feats, np.random.default_rng(0).random((5, 64)).astype(np.float32))
    # a feature matrix cannot go into an index whose model takes 1x8x8 images
    bad = semhash("index", "add", str(db), "--features", str(feats))
    assert bad.returncode == 1 and "item shape (64,)" in bad.stderr
    removed = runner.invoke(app, ["index", "remove", str(db), "digits/train/0", "digits/train/1", "--json"])
    assert json.loads(removed.output) == {"removed": 2}
    verify = json.loads(runner.invoke(app, ["index", "verify", str(db), "--json"]).output)
    assert verify["items"] == 1498 and verify["derived_matched_sql"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "{db}", "--item", "digits/train/9", "-k", "0"], "k must be a positive integer"),
        (["search", "{db}", "--item", "digits/train/9", "--radius", "17"], "between 0 and the code length 16"),
        (["search", "{db}", "--item", "no-such-key"], "no item 'no-such-key'"),
        (["search", "{db}", "--image", "{model}"], "not a readable image"),
        (["search", "{db}", "--image", "{folder}/missing.png"], "missing.png"),
        (["search", "{db}"], "give exactly one query"),
        (["search", "{folder}/nowhere.db", "--item", "x"], "no index named 'default'"),
        (["search", "{db}", "--item", "x", "--name", "other"], "no index named 'other'"),
        (
            ["index", "build", "{folder}/new.db", "--model", "{folder}/missing.semhash", "--dataset", "digits"],
            "no such model file",
        ),
        (["index", "build", "{db}", "--model", "{model}", "--dataset", "digits"], "already holds"),
        (["index", "build", "{folder}/new2.db", "--model", "{model}", "--dataset", "nosuch"], "unknown data set"),
        (["train", "--dataset", "digits", "--bits", "300", "-o", "{folder}/x.semhash"], "multiple of 8"),
        (
            ["train", "--dataset", "digits", "--method", "pcah", "--bits", "128", "-o", "{folder}/x.semhash"],
            "at least 128 dimensions",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_1(built, args, message):
    folder, model, db = built
    proc = semhash(*[a.format(db=db, model=model, folder=folder) for a in args])
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_model_that_does_not_match_the_index_is_refused(built, tmp_path):
    folder, model, db = built
    other = tmp_path / "d32.semhash"
    assert (
        runner.invoke(
            app, ["train", "--dataset", "digits", "--method", "lsh", "--bits", "32", "-o", str(other)]
        ).exit_code
        == 0
    )
    proc = semhash("search", str(db), "--dataset", "digits", "--model", str(other))
    assert proc.returncode == 1 and "32-bit codes" in proc.stderr and "16-bit" in proc.stderr
    same_bits = tmp_path / "lsh16.semhash"
    runner.invoke(app, ["train", "--dataset", "digits", "--method", "lsh", "--bits", "16", "-o", str(same_bits)])
    proc = semhash("search", str(db), "--dataset", "digits", "--model", str(same_bits))
    assert proc.returncode == 1 and "not the model index 'default' was built with" in proc.stderr


def test_a_truncated_model_file_is_refused(built, tmp_path):
    folder, model, db = built
    broken = tmp_path / "broken.semhash"
    broken.write_bytes(model.read_bytes()[:50])
    proc = semhash("index", "build", str(tmp_path / "b.db"), "--model", str(broken), "--dataset", "digits")
    assert proc.returncode == 1 and "not a semhash model file" in proc.stderr


def test_show_writes_the_queries_and_neighbours_as_an_image_grid(built, tmp_path):
    from PIL import Image

    folder, model, db = built
    grid = tmp_path / "grid.png"
    out = runner.invoke(app, ["search", str(db), "--dataset", "digits", "--limit", "2", "-k", "4", "--show", str(grid)])
    assert out.exit_code == 0 and f"wrote {grid}" in out.output
    with Image.open(grid) as im:
        assert im.format == "PNG" and im.width > im.height  # 2 rows of 1 query + 4 neighbours
