"""The core install (`pip install .`, no [train] extra) is a working tool: every command but
training an autoencoder runs with torch and torchvision absent, MLP autoencoder models included,
and training one says in one line how to get PyTorch."""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import semhash

# Imported at every interpreter's start (the commands' and their worker processes'): torch and
# torchvision are then not found on the path, as where they are not installed (find_spec gives
# None, an import ModuleNotFoundError).
NO_TORCH = """
import sys
from importlib.machinery import PathFinder


class NotInstalled(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "torchvision"):
            return None
        return PathFinder.find_spec(name, path, target)


sys.meta_path[:] = [NotInstalled if finder is PathFinder else finder for finder in sys.meta_path]
"""


@pytest.fixture(scope="module")
def without_torch(tmp_path_factory):
    """run(*args) -> the CompletedProcess of `semhash *args` in a folder of its own, torch blocked."""
    where = tmp_path_factory.mktemp("core")
    (where / "site").mkdir()
    (where / "site" / "sitecustomize.py").write_text(NO_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(where / "site"), os.environ.get("PYTHONPATH", "")])}

    def run(*args, stdin=None):
        command = [sys.executable, "-c", "from semhash.cli.main import main; main()", *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, cwd=where, env=env, input=stdin)

    def python(code):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=where, env=env)

    run.where, run.python = where, python
    return run


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_torch_is_blocked_in_the_commands(without_torch):
    proc = without_torch("train", "--dataset", "digits", "--method", "ae", "-o", "ae.semhash")
    assert proc.returncode == 1 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr == (
        "error: training an autoencoder needs PyTorch: pip install torch --index-url "
        "https://download.pytorch.org/whl/cpu, then pip install 'semhash[train]'\n"
    )
    assert not (without_torch.where / "ae.semhash").exists()


def test_itq_trains_indexes_and_answers_every_read_command(without_torch):
    run = without_torch
    ok(run("train", "--dataset", "digits", "--method", "itq", "--bits", 16, "-o", "itq.semhash"))
    ok(run("index", "build", "itq.db", "--model", "itq.semhash", "--dataset", "digits"))
    hits = json.loads(ok(run("search", "itq.db", "--item", "digits/train/0", "-k", 3, "--format", "json")))
    assert hits["queries"][0]["hits"][0]["key"] == "digits/train/0"
    ok(run("data", "export", "digits", "--split", "test", "--item", 0, "-o", "q.png"))
    assert ok(run("search", "itq.db", "--image", "q.png", "-k", 3, "--format", "json"))
    assert len(ok(run("encode", "--model", "itq.semhash", "--dataset", "digits", "--limit", 3)).splitlines()) >= 3
    assert "groups" in json.loads(ok(run("dedup", "itq.db", "--radius", 0, "--format", "json")))
    ok(run("index", "export", "itq.db", "-o", "itq.jsonl"))
    assert len((run.where / "itq.jsonl").read_text().splitlines()) == 1500
    ok(run("index", "add", "itq.db", "--dataset", "digits", "--split", "test"))
    assert "items: 1,797" in ok(run("index", "info", "itq.db"))
    ok(run("index", "verify", "itq.db"))


@pytest.fixture(scope="module")
def ae_index(without_torch, digits):
    """An MLP autoencoder's model, trained here with torch, and its index, built without."""
    semhash.train("ae", digits[0], without_torch.where / "ae.semhash", bits=16, hidden=(32,), steps=30, device="cpu")
    ok(without_torch("index", "build", "ae.db", "--model", "ae.semhash", "--dataset", "digits"))
    return without_torch.where / "ae.db"


def test_an_mlp_autoencoder_trained_elsewhere_is_read_and_searched_without_torch(without_torch, ae_index):
    run = without_torch
    ok(run("data", "export", "digits", "--split", "test", "--item", 1, "-o", "q1.png"))
    found = json.loads(ok(run("search", "ae.db", "--image", "q1.png", "-k", 2, "--format", "json")))
    assert len(found["queries"][0]["hits"]) == 2
    ours = ok(run("encode", "--model", "ae.semhash", "--dataset", "digits", "--limit", 5, "--format", "json"))
    theirs = semhash.encode(run.where / "ae.semhash", dataset="digits", limit=5)  # torch's model, this process
    assert [row["code"] for row in json.loads(ours)] == [code.tobytes().hex() for code in theirs[1]]


SERVED = """
import json, sys
from fastapi.testclient import TestClient
import semhash

client = TestClient(semhash.create_app("ae.db"))
body = {"keys": ["digits/train/0"], "k": 2}
print(json.dumps(client.post("/indexes/default/search/items", json=body).json()))
print("torch" in sys.modules)
"""


def test_the_http_service_answers_without_torch(without_torch, ae_index):
    proc = without_torch.python(SERVED)
    answer, imported = ok(proc).splitlines()
    assert json.loads(answer)["queries"][0]["hits"][0]["key"] == "digits/train/0" and imported == "False"


def test_mnist_files_are_read_without_torchvision(without_torch, rng):
    raw = without_torch.where / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 40), ("t10k", 10)):
        for part, shape in (("images-idx3", (n, 28, 28)), ("labels-idx1", (n,))):
            values = rng.integers(0, 10 if part.startswith("labels") else 256, shape).astype(np.uint8)
            header = bytes([0, 0, 8, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
            with gzip.open(raw / f"{prefix}-{part}-ubyte.gz", "wb") as f:
                f.write(header + values.tobytes())
    args = ("--dataset", "mnist", "--data-root", without_torch.where / "root")
    ok(without_torch("train", *args, "--method", "pcah", "--bits", 8, "-o", "mnist.semhash"))
    info = json.loads(ok(without_torch("data", "info", "mnist", "--data-root", "root", "--json")))
    assert info["items"] == 40 and info["classes"][0] == "0 - zero"
