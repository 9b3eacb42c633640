"""Starting the HTTP service: `serve` (what `semhash serve` runs: uvicorn, one or more worker
processes) and, for benchmarks and tests, a free local port and a server subprocess that answers.

    serve("items.db", port=8000, workers=2)          # until interrupted
    server = spawn_server("items.db", free_port())   # a subprocess, once /health answers
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_server(
    target: str, port: int, env: dict | None = None, workers: int = 1, timeout: float = 120
) -> subprocess.Popen:
    """`semhash serve target` in a subprocess, returned once /health answers (benchmarks, tests)."""
    import httpx

    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from semhash.cli.main import main; main()",
            "serve",
            target,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.stderr.read().strip()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


CONFIG_ENV = "SEMHASH_SERVE"
TOKEN_ENV = "SEMHASH_TOKEN"
MAX_CONNECTIONS = 512  # per worker; `semhash bench serve` runs 32 clients


def app_from_env():
    """Factory for uvicorn's worker processes: the configuration travels in $SEMHASH_SERVE.

    Each worker computes on one thread (FAISS's OpenMP, torch): requests are short and the workers
    are the parallelism. Measured: two workers with OpenMP's default threads on 2 cores answered
    94 k-NN q/s instead of 660, their spinning threads fighting over the cores."""
    import faiss
    import torch

    from .service import create_app

    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    cfg = json.loads(os.environ[CONFIG_ENV])
    return create_app(cfg["target"], cfg.get("names"), cfg.get("data_root"), cfg.get("token"), cfg.get("host"))


def serve(
    target: str,
    names: list[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    data_root: str | None = None,
    log_level: str = "info",
    token: str | None = None,
) -> None:
    """Run the service under uvicorn until interrupted (checks the store before it listens).
    token: what writes must present (default: $SEMHASH_TOKEN); without one, writes are allowed
    only while the server listens on loopback."""
    import uvicorn

    from ...hashing.errors import ParameterError
    from .guard import is_loopback
    from .service import Service

    if workers < 1 or not 0 <= port < 65536:
        raise ParameterError(f"workers must be positive and the port within 0-65535, got {workers} and {port}")
    Service(target, names)  # a bad target or name fails here, as one line, not in every worker
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        print(f"warning: listening on {host} without a token: writes are refused (set {TOKEN_ENV})", file=sys.stderr)
    config = {"target": target, "names": names, "data_root": data_root, "token": token, "host": host}
    os.environ[CONFIG_ENV] = json.dumps(config)  # the workers' configuration; a child process's own
    uvicorn.run(
        "semhash.index_store.http.launcher:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        # Idle keep-alive connections close after 5 s, and past MAX_CONNECTIONS per worker a new
        # one gets a 503 at once: slow or stalled clients cannot hold every slot.
        timeout_keep_alive=5,
        limit_concurrency=MAX_CONNECTIONS,
    )
