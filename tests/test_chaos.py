"""Chaos: two real `semhash serve` replicas on one store (SQLite, and PostgreSQL when it is there),
16 client threads adding, removing and searching against both, and one replica killed with
SIGKILL while writes are in flight, then restarted on the same port.

What must hold over the whole run: no 5xx, no 4xx (every request is valid: fresh keys, removals
of keys the thread itself added, searches by codes or by keys that are there), connection errors
only to the killed replica and only while it is down; every acknowledged addition not later
acknowledged-removed is in SQL, every acknowledged removal is not; every search answer is
consistent (ascending distances, each hit's distance the Hamming distance to that item's code,
no duplicate hits, no item acknowledged-removed before the search was sent); after the writers
stop, both replicas answer k-NN and radius queries exactly as brute force over the codes in SQL,
report SQL's item count and generation, and `semhash index verify` finds the derived structures
equal to SQL.

SEMHASH_CHAOS_SECONDS (default 60) is how long the clients run.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import httpx
import numpy as np

import semhash
from semhash.hashing.codes import hamming
from semhash.index_store.http.launcher import free_port, spawn_server
from semhash.index_store.query import input_codes

THREADS = 16
MAX_OPS_PER_THREAD = 100_000  # the loops also end by time; this bounds them whatever the clock does
K = 10
SEARCH_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def chaos_seconds() -> float:
    return float(os.environ.get("SEMHASH_CHAOS_SECONDS", "60"))


# --- servers ------------------------------------------------------------------------------------
class Replica:
    """One `semhash serve --workers 1` process on a fixed port; its stderr is drained by a thread
    (a full pipe would block the server) and kept, across restarts, for the failure report."""

    def __init__(self, target: str, port: int, env: dict):
        self.target, self.port, self.env = target, port, env
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.stderr: list[str] = []
        self._drainers: list[threading.Thread] = []

    def start(self) -> None:
        self.proc = spawn_server(self.target, self.port, self.env, workers=1)
        proc, generation = self.proc, len(self._drainers)
        self.stderr.append(f"--- process {proc.pid} (start {generation}) ---\n")
        drainer = threading.Thread(target=self._drain, args=(proc,), daemon=True)
        drainer.start()
        self._drainers.append(drainer)

    def _drain(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            self.stderr.append(line)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        for d in self._drainers:
            d.join(timeout=5)

    def stderr_tail(self, chars: int = 6000) -> str:
        return "".join(self.stderr)[-chars:]


# --- what the clients did -----------------------------------------------------------------------
@dataclass
class Op:
    thread: int
    replica: int
    kind: str  # add, remove, search_code, search_items
    keys: list[str]
    t0: float
    t1: float = 0.0
    status: int | None = None  # None: no HTTP answer (a transport error)
    error: str = ""
    body: str = ""
    query_code: int | None = None  # search_code: the code searched, as an integer
    hits: list[tuple[str, int]] = field(default_factory=list)


class World:
    """Shared state of the run: the operations, the keys' local codes, writes in flight."""

    def __init__(self, replicas: list[Replica], name: str, vectors: np.ndarray, local_codes: np.ndarray):
        self.replicas, self.name = replicas, name
        self.vectors, self.local_codes = vectors, local_codes  # local_codes[i]: the model's code of vectors[i]
        self.ops: list[Op] = []
        self.added_vector: dict[str, int] = {}  # key -> row of `vectors` it was added with
        self.lock = threading.Lock()
        self.in_flight_writes = [0, 0]
        self.stop = threading.Event()


def to_int(code: np.ndarray) -> int:
    return int.from_bytes(bytes(code), "big")


def worker(world: World, tid: int) -> None:
    rng = random.Random(1000 + tid)
    clients = [
        httpx.Client(
            base_url=r.url,
            timeout=SEARCH_TIMEOUT,
            trust_env=False,  # loopback only, never through a proxy
            limits=httpx.Limits(max_keepalive_connections=0),  # no stale keep-alive connections after the kill
        )
        for r in world.replicas
    ]
    own: list[str] = []  # keys this thread added (acknowledged) and has not tried to remove
    try:
        for n in range(MAX_OPS_PER_THREAD):
            if world.stop.is_set():
                break
            op = one_op(world, clients, rng, tid, n, own)
            if op.status is None:
                time.sleep(0.05)  # the replica is down: do not spin on refused connections
    finally:
        for c in clients:
            c.close()


def one_op(world: World, clients, rng: random.Random, tid: int, n: int, own: list[str]) -> Op:
    replica = rng.randrange(2)
    roll = rng.random()
    if roll < 0.35 or (roll < 0.55 and not own):
        return add(world, clients[replica], replica, tid, n, rng, own)
    if roll < 0.55:
        return remove(world, clients[replica], replica, tid, rng, own)
    if roll < 0.8:
        return search_code(world, clients[replica], replica, tid, rng)
    return search_items(world, clients[replica], replica, tid, rng, own)


def send(world: World, op: Op, request, write: bool) -> httpx.Response | None:
    """Run request() for op, recording its times and outcome; writes count as in flight meanwhile."""
    op.t0 = time.monotonic()
    if write:
        with world.lock:
            world.in_flight_writes[op.replica] += 1
    try:
        response = request()
        op.status, op.body = response.status_code, response.text[:500]
    except httpx.TransportError as exc:
        response, op.error = None, f"{type(exc).__name__}: {exc}"
    finally:
        op.t1 = time.monotonic()  # before the in-flight count drops: a kill that saw it lies within
        if write:
            with world.lock:
                world.in_flight_writes[op.replica] -= 1
        with world.lock:
            world.ops.append(op)
    return response


def add(world: World, client, replica: int, tid: int, n: int, rng: random.Random, own: list[str]) -> Op:
    row = rng.randrange(len(world.vectors))
    key = f"chaos/{tid}/{n}"
    with world.lock:
        world.added_vector[key] = row
    item = {"key": key, "vector": world.vectors[row].tolist(), "label": rng.randrange(10)}
    op = Op(tid, replica, "add", [key], 0.0)
    r = send(world, op, lambda: client.post(f"/indexes/{world.name}/items", json={"items": [item]}), write=True)
    if r is not None and r.status_code == 200:
        own.append(key)
    return op


def remove(world: World, client, replica: int, tid: int, rng: random.Random, own: list[str]) -> Op:
    keys = [own.pop(rng.randrange(len(own))) for _ in range(min(len(own), rng.choice((1, 1, 2, 3))))]
    op = Op(tid, replica, "remove", keys, 0.0)
    send(world, op, lambda: client.delete(f"/indexes/{world.name}/items", params={"key": keys}), write=True)
    return op


def search_code(world: World, client, replica: int, tid: int, rng: random.Random) -> Op:
    if rng.random() < 0.7:  # near the data (where the additions and removals are), else anywhere
        code = to_int(world.local_codes[rng.randrange(len(world.local_codes))])
    else:
        code = rng.getrandbits(16)
    op = Op(tid, replica, "search_code", [], 0.0, query_code=code)
    body = {"codes": [f"{code:04x}"], "k": K}
    r = send(world, op, lambda: client.post(f"/indexes/{world.name}/search", json=body), write=False)
    keep_hits(op, r)
    return op


def search_items(world: World, client, replica: int, tid: int, rng: random.Random, own: list[str]) -> Op:
    # a key this thread added (maybe on the other replica): it must be found at once; else a base item
    key = rng.choice(own) if own and rng.random() < 0.6 else f"digits/train/{rng.randrange(1500)}"
    op = Op(tid, replica, "search_items", [key], 0.0)
    body = {"keys": [key], "k": K}
    r = send(world, op, lambda: client.post(f"/indexes/{world.name}/search/items", json=body), write=False)
    keep_hits(op, r)
    return op


def keep_hits(op: Op, r: httpx.Response | None) -> None:
    if r is not None and r.status_code == 200:
        op.hits = [(h["key"], h["distance"]) for h in r.json()["queries"][0]["hits"]]


# --- the run ------------------------------------------------------------------------------------
@dataclass
class Chaos:
    victim: int
    kill_at: float = 0.0
    up_at: float = 0.0
    writes_in_flight_at_kill: int = 0


def run_chaos(world: World, seconds: float) -> Chaos:
    """The clients for `seconds` (and at least a quarter of it after the restart); at half time,
    once a write to it is in flight, the victim is killed with SIGKILL and started again."""
    chaos = Chaos(victim=1)
    threads = [threading.Thread(target=worker, args=(world, t), daemon=True) for t in range(THREADS)]
    start = time.monotonic()
    try:
        for t in threads:
            t.start()
        time.sleep(seconds / 2)
        wait_until = time.monotonic() + 30
        while time.monotonic() < wait_until:
            with world.lock:
                if world.in_flight_writes[chaos.victim] > 0:
                    chaos.writes_in_flight_at_kill = world.in_flight_writes[chaos.victim]
                    chaos.kill_at = time.monotonic()
                    world.replicas[chaos.victim].kill()  # under the lock: the counted writes stay in flight
                    break
            time.sleep(0.001)
        if not chaos.kill_at:
            chaos.kill_at = time.monotonic()
            world.replicas[chaos.victim].kill()
        world.replicas[chaos.victim].start()  # same port; returns once /health answers
        chaos.up_at = time.monotonic()
        time.sleep(max(0.0, max(start + seconds, chaos.up_at + seconds / 4) - time.monotonic()))
    finally:
        world.stop.set()
        for t in threads:
            t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "client threads did not stop within 120 s of the end"
    return chaos


# --- checks -------------------------------------------------------------------------------------
def check_responses(world: World, chaos: Chaos) -> list[str]:
    """No 5xx, no 4xx; transport errors only to the victim, only while it was down."""
    problems = []
    for op in world.ops:
        where = f"{op.kind} {op.keys} on replica {op.replica} at t={op.t0:.3f}..{op.t1:.3f}"
        if op.status is not None and op.status >= 500:
            problems.append(f"5xx: {op.status} for {where}: {op.body}")
        elif op.status is not None and op.status != 200:
            problems.append(f"unexpected {op.status} for {where}: {op.body}")
        elif op.status is None:
            in_window = op.replica == chaos.victim and op.t1 >= chaos.kill_at and op.t0 <= chaos.up_at
            if not in_window:
                problems.append(f"connection error outside the downtime window for {where}: {op.error}")
    return problems


def never_sent(op: Op) -> bool:
    """No connection was made (each request opens its own), so the server never saw the request."""
    return op.status is None and op.error.startswith(("ConnectError", "ConnectTimeout"))


def fates(world: World) -> tuple[set[str], set[str], set[str], set[str]]:
    """(keys that must be in SQL, keys that must not, keys whose fate is unknown: a write cut off
    by the kill or answered with a 5xx, which may have committed; additions never sent). Each key
    is added once and removed at most once (its thread forgets it when it tries)."""
    added, removed, unknown, unsent = set(), set(), set(), set()
    for op in world.ops:
        if op.kind not in ("add", "remove"):
            continue
        if op.status == 200:
            (added if op.kind == "add" else removed).update(op.keys)
        elif never_sent(op) and op.kind == "add":
            unsent.update(op.keys)
        elif op.status is None or op.status >= 500:
            unknown.update(op.keys)
    # a removal refused (4xx, reported as such) or never sent leaves its acknowledged keys in place
    return added - removed - unknown, removed | unsent, unknown, unsent


def check_sql(world: World, index) -> list[str]:
    present, absent, unknown, unsent = fates(world)
    there = index.store.ids_of(world.name, sorted(present))
    lost = sorted(k for k in present if k not in there)
    back = sorted(index.store.ids_of(world.name, sorted(absent)))
    problems = []
    if lost:
        problems.append(f"{len(lost)} acknowledged additions are not in SQL, e.g. {lost[:5]}")
    if back:
        problems.append(f"{len(back)} keys acknowledged-removed or never sent are in SQL, e.g. {back[:5]}")
    print(
        f"chaos: {len(present)} keys must be in SQL ({len(present) - len(lost)} are), {len(absent)} must not "
        f"({len(absent) - len(back)} are not; {len(unsent)} of them additions refused a connection), "
        f"{len(unknown)} keys of unknown fate (writes cut off by the kill)"
    )
    return problems


def sql_state(index, name: str) -> tuple[list[str], np.ndarray, dict[str, int], int]:
    """(keys, codes (n, 2), key -> code as an integer, generation) of everything in SQL now."""
    ids, codes, row = index.store.load_codes(name)
    meta = index.store.items(name, ids)
    keys = [meta[int(i)]["key"] for i in ids]
    return keys, codes, {k: to_int(c) for k, c in zip(keys, codes)}, row.generation


def code_book(world: World, sql_codes: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    """key -> code for every key that was ever in the index: SQL's where it is still there, else the
    model's code of the vector it was added with; and the keys whose stored code is not the model's
    code of their vector."""
    book = dict(sql_codes)
    wrong = []
    for key, row in world.added_vector.items():
        local = to_int(world.local_codes[row])
        if key in sql_codes and sql_codes[key] != local:
            wrong.append(key)
        book.setdefault(key, local)
    return book, wrong


def check_answers(world: World, book: dict[str, int]) -> list[str]:
    """Every search answer of the run: k hits, ascending, distinct, each at its true Hamming
    distance, none acknowledged-removed before the search was sent."""
    removed_at = {k: op.t1 for op in world.ops if op.kind == "remove" and op.status == 200 for k in op.keys}
    problems, checked = [], 0
    for op in world.ops:
        if op.status != 200 or not op.kind.startswith("search"):
            continue
        checked += 1
        q = op.query_code if op.kind == "search_code" else book.get(op.keys[0])
        d = [dist for _, dist in op.hits]
        keys = [k for k, _ in op.hits]
        what = f"{op.kind} {op.keys or hex(op.query_code)} on replica {op.replica} at t={op.t0:.3f}"
        if len(op.hits) != K or d != sorted(d) or len(set(keys)) != len(keys):
            problems.append(f"{what}: not {K} ascending distinct hits: {op.hits}")
        unknown = [k for k in keys if k not in book]
        if unknown:
            problems.append(f"{what}: hits never added: {unknown}")
        bad = [(k, dist, bin(q ^ book[k]).count("1")) for k, dist in op.hits if k in book and q is not None]
        bad = [b for b in bad if b[1] != b[2]]
        if bad:
            problems.append(f"{what}: wrong distances (key, said, true): {bad}")
        stale = [k for k in keys if k in removed_at and removed_at[k] < op.t0]
        if stale:
            problems.append(f"{what}: hits removed (acknowledged) before the search was sent: {stale}")
    print(f"chaos: {checked} search answers checked")
    return problems[:50]


def tie_aware_mismatch(hits: list[tuple[str, int]], dists: np.ndarray, keys: list[str], k: int, radius) -> str:
    """'' when hits are a correct k-NN answer (within radius) over (keys, dists): same distances,
    same keys at each distance but the last, whose keys must be among those at that distance
    (which of the tied items make the cut is the searcher's choice), unless nothing was cut."""
    order = np.argsort(dists, kind="stable")
    cand = [(keys[i], int(dists[i])) for i in order if radius is None or dists[i] <= radius]
    want = cand[:k]
    if [d for _, d in hits] != [d for _, d in want]:
        return f"distances {[d for _, d in hits]} != brute force {[d for _, d in want]}"
    if not hits:
        return ""
    last, truncated = hits[-1][1], len(cand) > k
    for dist in sorted({d for _, d in hits}):
        got = {key for key, d in hits if d == dist}
        full = {key for key, d in cand if d == dist}
        if dist == last and truncated:
            if not got <= full:
                return f"at distance {dist}: {sorted(got - full)} are not at that distance"
        elif got != full:
            return f"at distance {dist}: {sorted(got)} != brute force {sorted(full)}"
    return ""


def check_quiet(world: World, keys: list[str], codes: np.ndarray, generation: int) -> list[str]:
    """With no writer left, each replica answers as brute force over SQL and reports SQL's state."""
    rng = np.random.default_rng(7)
    queries = np.concatenate(
        [rng.integers(0, 256, (150, 2), dtype=np.uint8), codes[rng.choice(len(codes), 150, replace=False)]]
    )
    hexes = [bytes(c).hex() for c in queries]
    dist = hamming(queries, codes)
    problems = []
    with httpx.Client(timeout=SEARCH_TIMEOUT, trust_env=False) as client:
        for r, replica in enumerate(world.replicas):
            base = f"{replica.url}/indexes/{world.name}"
            info = client.get(base).json()
            if (info["items"], info["generation"]) != (len(keys), generation):
                problems.append(
                    f"replica {r} reports {info['items']} items at generation {info['generation']}, "
                    f"SQL holds {len(keys)} at generation {generation}"
                )
            for k, radius in ((1, None), (K, None), (100, None), (1000, 2)):
                res = client.post(f"{base}/search", json={"codes": hexes, "k": k, "radius": radius})
                if res.status_code != 200:
                    problems.append(f"replica {r}, k={k}, radius={radius}: {res.status_code} {res.text[:300]}")
                    continue
                for i, q in enumerate(res.json()["queries"]):
                    hits = [(h["key"], h["distance"]) for h in q["hits"]]
                    why = tie_aware_mismatch(hits, dist[i], keys, k, radius)
                    if why:
                        problems.append(f"replica {r}, code {hexes[i]}, k={k}, radius={radius}: {why}")
    return problems[:50]


def check_verify(target: str, name: str) -> list[str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from semhash.cli.main import main; main()",
            "index",
            "verify",
            target,
            "--name",
            name,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    if proc.returncode != 0:
        return [f"semhash index verify failed ({proc.returncode}): {proc.stderr[-2000:]}"]
    report = json.loads(proc.stdout)
    print(f"chaos: semhash index verify: {report}")
    return [] if report["derived_matched_sql"] is True else [f"semhash index verify: {report}"]


# --- the test -----------------------------------------------------------------------------------
def test_two_replicas_survive_a_kill_minus_9_under_concurrent_writes(store_target, tmp_path, index_name):
    seconds = chaos_seconds()
    model = tmp_path / "d16.semhash"
    semhash.train("itq", "digits", str(model), bits=16)
    semhash.build_index(store_target, str(model), "digits", name=index_name)
    hasher = semhash.load_hasher(str(model))
    x = np.concatenate([semhash.load_dataset("digits", split).x for split in ("train", "test")])
    vectors = x.reshape(len(x), -1).astype(np.float32)
    # each vector's code as the service computes it for a one-item request (same pipeline, one row)
    local_codes = np.concatenate([input_codes(hasher, "vectors", [v.tolist()]) for v in vectors])
    env = dict(os.environ)  # XDG_CACHE_HOME from the store_target fixture: the replicas share a cache
    replicas = [Replica(store_target, free_port(), env) for _ in range(2)]
    world = World(replicas, index_name, vectors, local_codes)
    problems = []
    try:
        for r in replicas:
            r.start()
        started = time.monotonic()
        chaos = run_chaos(world, seconds)
        print(
            f"chaos: {len(world.ops)} requests in {time.monotonic() - started:.1f} s; replica {chaos.victim} "
            f"killed at +{chaos.kill_at - started:.1f} s with {chaos.writes_in_flight_at_kill} writes in flight, "
            f"answering again {chaos.up_at - chaos.kill_at:.1f} s later; "
            f"{sum(op.status is None for op in world.ops)} connection errors"
        )
        assert chaos.writes_in_flight_at_kill > 0, "no write was in flight to the victim within 30 s"
        problems += check_responses(world, chaos)
        index = semhash.Index.open(store_target, index_name)
        problems += check_sql(world, index)
        keys, codes, sql_codes, generation = sql_state(index, index_name)
        book, wrong = code_book(world, sql_codes)
        if wrong:
            problems.append(f"{len(wrong)} items stored with another code than their vector's, e.g. {wrong[:5]}")
        problems += check_answers(world, book)
        problems += check_quiet(world, keys, codes, generation)
        problems += check_verify(store_target, index_name)
        if problems:
            stderr = "\n".join(f"=== replica {i} stderr ===\n{r.stderr_tail()}" for i, r in enumerate(replicas))
            raise AssertionError(f"{len(problems)} problems:\n" + "\n".join(problems[:80]) + "\n" + stderr)
    finally:
        world.stop.set()
        for r in replicas:
            r.stop()
        drop_quietly(store_target, index_name)


def drop_quietly(target: str, name: str) -> None:
    """Leave nothing in a shared PostgreSQL database, pass or fail (the report has the evidence)."""
    try:
        semhash.Index.open(target, name).store.drop_index(name)
    except Exception as exc:  # cleanup must not hide the test's own failure
        print(f"chaos: could not drop index {name!r}: {exc}")
