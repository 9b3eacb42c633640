"""Starting the HTTP service: `serve` (what `semhash serve` runs: uvicorn, one or more worker
processes) and, for benchmarks and tests, a free local port and a server subprocess that answers.

    serve("items.db", port=8000, workers=2)          # until interrupted
    server = spawn_server("items.db", free_port())   # a subprocess, once /health answers

Every argument travels to the processes in the environment ($SEMHASH_LAUNCH to the subprocess,
$SEMHASH_SERVE to uvicorn's workers), never on a command line: a database URL may carry a password,
and any user of the machine can read every process's command line (ps). The subprocess runs this
module (`python -m semhash.index_store.http.launcher`): starting a server never goes through the CLI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

LAUNCH_ENV = "SEMHASH_LAUNCH"  # spawn_server -> main(): serve()'s keyword arguments as JSON


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_server(
    target: str,
    port: int,
    env: dict | None = None,
    workers: int = 1,
    timeout: float = 120,
    names: list[str] | None = None,
) -> subprocess.Popen:
    """serve(target) in a subprocess, returned once /health answers (benchmarks, tests). env: the
    subprocess's environment (default: this one's); names: the indexes to serve (default: all)."""
    import httpx

    launch = {"target": target, "names": names, "port": port, "workers": workers, "log_level": "warning"}
    server = subprocess.Popen(
        [sys.executable, "-m", __name__],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**(os.environ if env is None else env), LAUNCH_ENV: json.dumps(launch)},
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


def main() -> None:
    """`python -m semhash.index_store.http.launcher`: serve() with spawn_server's arguments from
    $SEMHASH_LAUNCH; an error a user can act on is one line on stderr and exit 1."""
    from ...hashing.errors import translate

    launch = json.loads(os.environ.pop(LAUNCH_ENV))  # the workers get theirs in $SEMHASH_SERVE
    try:
        serve(**launch)
    except Exception as exc:
        err = translate(exc)  # passwords in database URLs hidden
        if err is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


CONFIG_ENV = "SEMHASH_SERVE"
TOKEN_ENV = "SEMHASH_TOKEN"
MAX_CONNECTIONS = 512  # per worker; `semhash bench serve` runs 32 clients
# A token is one word; a file longer than this holds something else (and /dev/zero never ends:
# reading it whole ran into a MemoryError).
MAX_TOKEN_BYTES = 4096


def read_token(path) -> str:
    """The write token a file holds: at most MAX_TOKEN_BYTES of UTF-8, surrounding whitespace (the
    final newline) dropped. ParameterError, one line naming the file and never its content, for a
    file that is larger, unreadable, not UTF-8 or holds no usable token (check_token)."""
    from ...hashing.errors import ParameterError

    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TOKEN_BYTES + 1)
    except OSError as exc:
        raise ParameterError(f"{path}: the token file cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(data) > MAX_TOKEN_BYTES:
        raise ParameterError(f"{path}: a token file holds at most {MAX_TOKEN_BYTES:,} bytes, and this one holds more")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ParameterError(f"{path}: the token file is not UTF-8 text") from None
    return check_token(text, f"{path}: the token file")


def check_token(text: str, where: str) -> str:
    """text without surrounding whitespace, refused (ParameterError, `where` and why, never the
    token) when that leaves nothing, or anything but printable ASCII without spaces: a client's
    `Authorization: Bearer <token>` header could never carry it, and every write would be refused."""
    from ...hashing.errors import ParameterError

    token = text.strip()
    if not token:
        raise ParameterError(f"{where} holds only whitespace" if text else f"{where} is empty")
    if not all("!" <= c <= "~" for c in token):
        raise ParameterError(f"{where} holds spaces, control or non-ASCII characters: a token is one word of ASCII")
    return token


def app_from_env():
    """Factory for uvicorn's worker processes: the configuration travels in $SEMHASH_SERVE.

    Each worker computes on one thread (FAISS's OpenMP, torch): requests are short and the workers
    are the parallelism. Measured: two workers with OpenMP's default threads on 2 cores answered
    94 k-NN q/s instead of 660, their spinning threads fighting over the cores."""
    import faiss

    from .service import create_app

    faiss.omp_set_num_threads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    else:  # torch comes only with a conv autoencoder's model (its encoder): it starts with this many
        os.environ["OMP_NUM_THREADS"] = "1"
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
    raw = token or os.environ.get(TOKEN_ENV)  # semhash serve's --token-file went through read_token
    token = check_token(raw, "the token" if token else f"${TOKEN_ENV}") if raw else None
    Service(target, names)  # a bad target or name fails here, as one line, not in every worker
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


if __name__ == "__main__":
    main()
