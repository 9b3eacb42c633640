"""The README's quickstart, run as a user would (real subprocesses), on a small slice of MNIST."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart_commands() -> list[str]:
    """The semhash commands of the README's quickstart block, in order."""
    text = README.read_text()
    block = text.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if line.startswith("semhash")]


SMALL = {  # the same commands, made small: a slice of the data and one epoch
    "train": ["--limit", "3000", "--epochs", "1"],
    "index build": ["--limit", "3000"],
    "bench quality": ["--limit", "3000", "--ae-epochs", "1", "--queries", "50"],
}


@pytest.mark.mnist
def test_the_readme_quickstart_works_as_written(mnist, tmp_path):
    commands = quickstart_commands()
    assert [c.split()[1] for c in commands] == ["train", "index", "data", "search", "bench"]
    from semhash.hashing.data import data_root

    # the data root the fixture found MNIST in, absolute: the commands run in a scratch folder
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "SEMHASH_DATA": str(data_root().resolve())}
    for command in commands:
        args = command.split()[1:]
        for name, extra in SMALL.items():
            if " ".join(args[: len(name.split())]) == name:
                args += extra
        proc = subprocess.run(
            [sys.executable, "-c", "from semhash.cli.main import main; main()", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"{command}\n{proc.stderr}"
    assert (tmp_path / "mnist32.semhash").is_file() and (tmp_path / "query.png").is_file()
    results = json.loads(next(tmp_path.glob("*/quality.json")).read_text())
    assert {r["method"] for r in results["rows"]} == {"ae", "itq", "pcah", "lsh"}
    serve_block_works(tmp_path, env)


def serve_block_works(folder: Path, env: dict) -> None:
    """The README's "Serve over HTTP" block, on the index the quickstart built (on a free port)."""
    from servers import free_port, start_server

    text = README.read_text()
    block = text.split("## Serve over HTTP", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if line.strip()]
    serve, curls = lines[0], lines[1:]
    assert serve.startswith("semhash serve mnist32.db --port 8000") and all(c.startswith("curl ") for c in curls)
    port = free_port()
    server = start_server(str(folder / "mnist32.db"), port, env)
    try:
        for command in curls:
            proc = subprocess.run(
                command.replace(":8000", f":{port}"),
                shell=True,
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            answer = json.loads(proc.stdout)
            assert proc.returncode == 0 and "detail" not in answer, f"{command}\n{proc.stdout}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    code = text.split("From Python:", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    found, result = namespace["found"], namespace["result"]
    assert len(found["queries"]) == 2 and len(namespace["hits"]) == 5
    assert all(h["distance"] <= 2 for q in namespace["near"]["queries"] for h in q["hits"])
    assert 0 < namespace["report"].map_all <= 1
    # one answer for every search: Index.search's is semhash.search's (and the CLI's JSON, the HTTP body's)
    assert found.keys() == result.keys() and found["queries"][0].keys() == result["queries"][0].keys()
    assert result["queries"][0]["query"] == "digits/train/0" and result["queries"][0]["hits"][0]["distance"] == 0


def test_the_python_api_is_the_documented_one():
    """semhash.__all__ is what the README's Python section names: every name it lists is there,
    every semhash.<name> the section uses is listed."""
    import semhash

    text = README.read_text()
    code = text.split("From Python:", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    used = set(re.findall(r"\bsemhash\.(\w+)", code)) - {"hashing"}  # sub-packages are imported, not API
    assert used == set(semhash.__all__) == set(dir(semhash))
