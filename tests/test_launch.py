"""Starting a server: a library function of index_store/http (never the CLI re-entered), and the
database URL, which may carry a password, on no process's command line (every user can read those
with ps): neither the server's nor its uvicorn workers', which get it through the environment."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from semhash.hashing.methods import make_hasher
from semhash.index_store.build import build_index
from semhash.index_store.catalog import drop_index
from semhash.index_store.http.launcher import CONFIG_ENV, free_port, spawn_server

ROOT = Path(__file__).resolve().parent.parent


def process_tree(pid: int) -> list[int]:
    """pid and every process below it (from /proc/<pid>/stat's parent field)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        parents[int(stat.parent.name)] = int(fields[1])
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += [c for c, parent in parents.items() if parent == p]
    return tree


def read(pid: int, what: str) -> str:
    return Path(f"/proc/{pid}/{what}").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def secrets_of(target: str) -> list[str]:
    """What must not show: the target itself and, for a URL, its user:password@ part."""
    parts = urlsplit(target)
    return [target] + ([f"{parts.username}:{parts.password}@"] if parts.password else [])


def workers_up(pid: int, count: int, timeout: float = 60) -> list[int]:
    """The uvicorn workers (multiprocessing's spawned children) below pid, once `count` run."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        workers = [p for p in process_tree(pid)[1:] if "spawn_main" in read(p, "cmdline")]
        if len(workers) >= count:
            return workers
        time.sleep(0.2)
    pytest.fail(f"fewer than {count} workers started")


def assert_no_secret_in_any_command_line(server: subprocess.Popen, target: str, workers: int) -> None:
    worker_pids = workers_up(server.pid, workers)
    for pid in process_tree(server.pid):
        line = read(pid, "cmdline")
        assert not any(secret in line for secret in secrets_of(target)), (pid, line)
    for pid in worker_pids:  # each worker was handed the target, through its environment
        assert CONFIG_ENV in read(pid, "environ")


@pytest.fixture
def served_index(store_target, index_name, digits, tmp_path):
    model = make_hasher("itq", bits=16).fit(digits[0]).save(tmp_path / "d16.semhash")
    build_index(store_target, model, digits[0].subset(200), name=index_name)
    yield store_target, index_name
    drop_index(store_target, index_name)


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def test_a_spawned_server_and_its_workers_show_no_database_url(served_index):
    target, name = served_index
    port = free_port()
    server = spawn_server(target, port, workers=2, names=[name])
    try:
        assert_no_secret_in_any_command_line(server, target, workers=2)
        for _ in range(6):  # answered by whichever worker accepts it
            assert httpx.get(f"http://127.0.0.1:{port}/indexes/{name}", timeout=30).json()["items"] == 200
    finally:
        stop(server)


def test_semhash_serve_takes_the_database_from_the_environment(served_index):
    target, name = served_index
    port = free_port()
    env = {**os.environ, "SEMHASH_INDEX": target}
    args = ["serve", "--name", name, "--port", str(port), "--workers", "2", "--log-level", "warning"]
    server = subprocess.Popen(
        [sys.executable, "-m", "semhash.cli.main", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and server.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/indexes/{name}", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert server.poll() is None, server.stderr.read().decode()
        assert_no_secret_in_any_command_line(server, target, workers=2)
    finally:
        stop(server)


def test_a_server_that_cannot_start_says_why_in_one_line(tmp_path):
    with pytest.raises(RuntimeError, match=r"the server exited: error: .*no such database file$"):
        spawn_server(str(tmp_path / "missing.db"), free_port())


def test_nothing_under_index_store_starts_or_imports_the_cli():
    """The import linter sees imports; a command line naming the CLI module is text it cannot see."""
    mentions = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "index_store").rglob("*.py")
        if re.search(r"semhash\.cli\b|\bcli\.main\b|from \.\.\.+cli\b", path.read_text())
    ]
    assert mentions == []
