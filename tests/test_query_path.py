"""ARCHITECTURE.md's "A query's path" is the path a query really takes: one `semhash search
--image` in a fresh interpreter passes through exactly the files that section lists."""

import re
import subprocess
import sys
from pathlib import Path

import semhash
from semhash.hashing.baselines import ITQ

ROOT = Path(__file__).resolve().parents[1]

# Run in the child: record, for each semhash function entered, the semhash files on its stack; print
# those under the four anchors of a query (decoding the image, encoding it, searching, reading the
# hits' rows from SQL).
TRACER = r"""
import sys
root, anchors, stacks = sys.argv.pop(1), {"open_image", "_encode", "knn", "radius", "items"}, set()
def watch(frame, event, arg):
    code = frame.f_code
    if event != "call" or code.co_name not in anchors or not code.co_filename.startswith(root):
        return
    while frame is not None:
        if frame.f_code.co_filename.startswith(root) and "site-packages" not in frame.f_code.co_filename:
            stacks.add(frame.f_code.co_filename[len(root):])
        frame = frame.f_back
sys.setprofile(watch)
from semhash.cli.main import main
try:
    main()
except SystemExit:
    pass
sys.setprofile(None)
print("\n".join(sorted(stacks)), file=sys.stderr)
"""


def documented_path() -> list[str]:
    """The files of the numbered steps of ARCHITECTURE.md's "A query's path", each step's first."""
    section = (ROOT / "ARCHITECTURE.md").read_text().split("## A query's path", 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"^\d+\. `([^`]+\.py)`", section, flags=re.MULTILINE)
    return steps


def test_a_search_by_image_passes_through_the_files_architecture_lists(tmp_path):
    data = semhash.load_dataset("digits", "train")
    ITQ(bits=32).fit(data).save(tmp_path / "d.semhash")
    semhash.build_index(tmp_path / "d.db", tmp_path / "d.semhash", data)
    from semhash.hashing.inputs.images import save_image

    save_image(semhash.load_dataset("digits", "test"), 0, tmp_path / "q.png")
    run = subprocess.run(
        [sys.executable, "-c", TRACER, f"{ROOT}/", "search", "d.db", "--image", "q.png", "-k", "5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and "query q.png" in run.stdout, run.stderr
    entered = set(run.stderr.split())
    path = documented_path()
    assert len(path) <= 10
    probe = {"index_store/engine/hashtable.py", "index_store/engine/multi_index.py", "index_store/engine/knn_tables.py"}
    assert entered - probe == set(path) - probe, "the path ARCHITECTURE.md describes is not the one taken"
