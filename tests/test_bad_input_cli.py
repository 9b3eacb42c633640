"""Bad input at the command line: each case a non-zero exit, exactly one line on stderr that starts
with "error: ", no traceback, nothing on stdout, and the store folder as it was (tests/bad_input.py
says the contract and builds the world the cases share).

    semhash index info 'postgresql+psycopg://u:pw@127.0.0.1:notaport/db'
    error: bad database URL postgresql+psycopg://u:***@127.0.0.1:notaport/db: the port 'notaport' is ...
"""

import json

import pytest
from bad_input import ITEMS, semhash_cli, storage_problems, valid_query_problems

SECRET = {"excludes": "secret"}
NOT_A_PORT = "postgresql+psycopg://user:secret@127.0.0.1:notaport/db"
AT_IN_PASSWORD = "postgresql+psycopg://user:se@cret@127.0.0.1:1/db"  # unescaped: SQLAlchemy's host would be cret@...
EXPORT = ["index", "export", "{db}", "-o"]
SEARCH = ["search", "{db}", "--item", "digits/train/0"]
AE = ["train", "--dataset", "digits", "--epochs", "1", "--limit", "64", "-o", "{d}/x.semhash"]

CLI_CASES = [
    # index files: mistyped, garbage, foreign
    ("info-mistyped-path", ["index", "info", "{d}/typo.db"], {}),
    ("verify-mistyped-path", ["index", "verify", "{d}/typo.db"], {}),
    ("search-mistyped-path", ["search", "{d}/typo.db", "--item", "digits/train/0"], {}),
    # near-duplicates: a threshold out of its units' range, a keep rule that is none, a threshold asked
    # of items without signatures (the world's three odd keys were added as bare codes)
    ("dedup-absurd-threshold", ["dedup", "{db}", "--threshold", "7"], {}),
    ("dedup-unknown-keep-rule", ["dedup", "{db}", "--keep", "newest"], {}),
    ("dedup-threshold-without-signatures", ["dedup", "{db}", "--threshold", "0.9"], {}),
    ("info-random-bytes", ["index", "info", "{d}/garbage.db"], {}),
    ("info-truncated-sqlite", ["index", "info", "{d}/truncated.db"], {}),
    ("search-foreign-sqlite", ["search", "{d}/foreign.db", "--code", "0000"], {}),
    ("verify-table-named-like-ours", ["index", "verify", "{d}/clash.db"], {}),
    ("info-postgres-bad-port", ["index", "info", "postgresql+psycopg://user:secret@127.0.0.1:70000/db"], SECRET),
    ("info-unknown-driver", ["index", "info", "postgresql+nodriver://user:secret@host/db"], SECRET),
    ("info-postgres-port-not-a-number", ["index", "info", NOT_A_PORT], SECRET),
    ("search-postgres-port-not-a-number", ["search", NOT_A_PORT, "--item", "digits/train/0"], SECRET),
    ("list-postgres-port-not-a-number", ["index", "list", NOT_A_PORT], SECRET),
    (
        "build-postgres-port-not-a-number",
        ["index", "build", NOT_A_PORT, "--model", "{m}/d16.semhash", "--dataset", "digits"],
        SECRET,
    ),
    ("serve-postgres-port-not-a-number", ["serve", NOT_A_PORT], SECRET),
    ("info-postgres-password-with-an-at-sign", ["index", "info", AT_IN_PASSWORD], {"excludes": "cret"}),
    # a hand-edited database: one line naming the damaged index
    (
        "search-label-stored-as-text",
        ["search", "{d}/damaged.db", "--item", "digits/train/1"],
        {"mentions": "'default'"},
    ),
    (
        "export-label-stored-as-text",
        ["index", "export", "{d}/damaged.db", "-o", "{d}/out.jsonl"],
        {"mentions": "damaged"},
    ),
    (
        "export-label-stored-as-text-to-stdout",
        ["index", "export", "{d}/damaged.db", "-o", "-"],
        {"mentions": "damaged"},
    ),
    # model files
    ("search-missing-model", ["search", "{db}", "--dataset", "digits", "--model", "{m}/missing.semhash"], {}),
    (
        "build-garbled-model",
        ["index", "build", "{d}/new.db", "--model", "{m}/garbled.semhash", "--dataset", "digits"],
        {},
    ),
    ("search-model-of-32-bits", ["search", "{db}", "--dataset", "digits", "--model", "{m}/d32.semhash"], {}),
    ("search-another-16-bit-model", ["search", "{db}", "--dataset", "digits", "--model", "{m}/lsh16.semhash"], {}),
    # images and vectors
    ("image-missing", ["search", "{db}", "--image", "{i}/missing.png"], {}),
    ("image-not-an-image", ["search", "{db}", "--image", "{i}/notimage.png"], {}),
    ("image-truncated-png", ["search", "{db}", "--image", "{i}/truncated.png"], {}),
    ("image-13000x13000-png", ["search", "{db}", "--image", "{i}/bomb.png"], {}),
    ("vector-wrong-length", ["search", "{db}", "--vector", "{i}/v63.npy"], {}),
    ("vector-nan", ["search", "{db}", "--vector", "{i}/nan.npy"], {}),
    ("vector-empty", ["search", "{db}", "--vector", "{i}/empty.npy"], {}),
    (
        "build-labels-wrong-length",
        [
            "index",
            "build",
            "{d}/new.db",
            "--model",
            "{m}/f16.semhash",
            "--features",
            "{i}/feats.npy",
            "--labels",
            "{i}/labels_short.npy",
        ],
        {},
    ),
    # absurd parameters
    ("k-0", [*SEARCH, "-k", "0"], {}),
    ("radius-over-bits", [*SEARCH, "--radius", "17"], {}),
    ("limit-0", ["search", "{db}", "--dataset", "digits", "--limit", "0"], {}),
    ("batch-size-0", ["index", "add", "{db}", "--dataset", "digits", "--split", "test", "--batch-size", "0"], {}),
    ("bits-12", ["train", "--dataset", "digits", "--method", "itq", "--bits", "12", "-o", "{d}/x.semhash"], {}),
    ("unknown-method", ["train", "--dataset", "digits", "--method", "zzz", "-o", "{d}/x.semhash"], {}),
    ("bottleneck-zzz", [*AE, "--bottleneck", "zzz"], {}),
    ("device-xyz", [*AE, "--device", "xyz"], {}),
    ("device-cuda-without-gpu", [*AE, "--device", "cuda"], {}),
    ("resume-without-checkpoint", [*AE, "--resume"], {}),
    ("members-0", [*AE, "--members", "0"], {}),
    ("members-with-a-checkpoint", [*AE, "--members", "2", "--checkpoint", "{d}/c.pt"], {}),
    ("serve-workers-0", ["serve", "{db}", "--workers", "0"], {}),
    ("serve-port-70000", ["serve", "{db}", "--port", "70000"], {}),
    # names and keys
    ("remove-a-known-and-an-unknown-key", ["index", "remove", "{db}", "digits/train/0", "no-such-key"], {}),
    ("add-keys-already-there", ["index", "add", "{db}", "--dataset", "digits", "--limit", "5"], {}),
    # exports: never over a file, never into a folder made up on the way, never a format in another's name
    ("export-over-an-existing-file", [*EXPORT, "{d}/exported.jsonl"], {"mentions": "--force"}),
    ("export-into-a-missing-folder", [*EXPORT, "{d}/nofolder/out.jsonl"], {"mentions": "no such folder"}),
    ("export-onto-a-folder", [*EXPORT, "{d}/dir.db", "--format", "jsonl"], {}),
    ("export-unknown-suffix", [*EXPORT, "{d}/out.txt"], {}),
    ("export-unknown-format", [*EXPORT, "{d}/out.txt", "--format", "xml"], {}),
    ("export-jsonl-into-a-csv-name", [*EXPORT, "{d}/out.csv", "--format", "jsonl"], {}),
    ("export-npz-to-stdout", [*EXPORT, "-", "--format", "npz"], {}),
]


@pytest.mark.parametrize("args, checks", [pytest.param(a, c, id=n) for n, a, c in CLI_CASES])
def test_cli_bad_input(sandbox, args, checks):
    proc = semhash_cli(sandbox, *args, timeout=60 if args[0] == "serve" else 120)
    problems = []
    lines = proc.stderr.splitlines()
    if proc.returncode == 0 or proc.returncode == "timeout":
        problems.append(f"exit code {proc.returncode}")
    if len(lines) != 1 or not lines[0].startswith("error: "):
        problems.append(f"stderr is {len(lines)} line(s), not one 'error: ' line")
    if "Traceback" in proc.stderr:
        problems.append("a traceback on stderr")
    if proc.stdout:
        problems.append("output on stdout")
    if checks.get("excludes") and checks["excludes"] in proc.stderr + proc.stdout:
        problems.append(f"the output shows {checks['excludes']!r}")
    if checks.get("mentions") and checks["mentions"] not in proc.stderr:
        problems.append(f"the error does not say {checks['mentions']!r}")
    problems += storage_problems(sandbox)
    assert not problems, (
        f"{'; '.join(problems)}\nrc={proc.returncode}\nstdout={proc.stdout[-1500:]!r}\nstderr={proc.stderr[-3000:]}"
    )


CLI_ACCEPTS = [
    ("image-16-bit-png", ["search", "{db}", "--image", "{i}/png16.png", "-k", "3", "--json"], 3),
    ("huge-k-is-capped", [*SEARCH, "-k", "1000000000", "--json"], ITEMS),
]


@pytest.mark.parametrize("args, hits", [pytest.param(a, h, id=n) for n, a, h in CLI_ACCEPTS])
def test_cli_accepts_odd_but_valid_input(sandbox, args, hits):
    proc = semhash_cli(sandbox, *args)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["queries"][0]["hits"]) == hits
    assert valid_query_problems(sandbox) == []
