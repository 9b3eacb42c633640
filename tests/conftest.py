"""Shared fixtures: small real data (scikit-learn digits) and the real MNIST when it is there."""

import os
from types import SimpleNamespace

import numpy as np
import pytest

from semhash.hashing.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    """(train, test) of scikit-learn's bundled 8x8 digits: 1,500 + 297 labelled images."""
    return load_dataset("digits", "train"), load_dataset("digits", "test")


@pytest.fixture(scope="session")
def mnist():
    """(database, queries) of the project protocol: 60,000 training images, first 1,000 test images.

    Skipped when the MNIST files are not under the data root, unless SEMHASH_REQUIRE_MNIST=1 (CI).
    """
    from semhash.hashing.errors import DataError

    try:
        return load_dataset("mnist", "train", download=False), load_dataset("mnist", "test", download=False).subset(
            1000
        )
    except DataError as exc:
        if os.environ.get("SEMHASH_REQUIRE_MNIST") == "1":
            raise
        pytest.skip(f"real MNIST not available: {exc}")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _store_targets():
    targets = ["sqlite"]
    if os.environ.get("SEMHASH_TEST_POSTGRES") or os.environ.get("SEMHASH_REQUIRE_POSTGRES") == "1":
        targets.append("postgresql")
    return targets


@pytest.fixture(params=_store_targets())
def store_target(request, tmp_path, monkeypatch):
    """A database to build indexes in: a fresh SQLite file, and the PostgreSQL server named by
    SEMHASH_TEST_POSTGRES (a SQLAlchemy URL) when it is set; CI sets it and starts the server."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if request.param == "sqlite":
        return str(tmp_path / "items.db")
    url = os.environ.get("SEMHASH_TEST_POSTGRES")
    if not url:
        pytest.fail("SEMHASH_REQUIRE_POSTGRES=1 but SEMHASH_TEST_POSTGRES is not set")
    return url


@pytest.fixture
def index_name(request):
    """An index name unique to the test, so tests sharing one PostgreSQL database do not meet."""
    import uuid

    base = "".join(c if c.isalnum() else "-" for c in request.node.name[:60])
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def own_schema(store_target, index_name):
    """store_target, in a PostgreSQL schema of the test's own: a test that makes or changes the
    tables, or serves every index of the store, must not meet the other tests sharing the database."""
    if "://" not in store_target:
        yield store_target
        return
    from semhash.benchmarks.postgres import in_schema, pg_schemas

    name = "t_" + "".join(c for c in index_name if c.isalnum())[-20:].lower()
    with pg_schemas(store_target, name):
        yield in_schema(store_target, name)


@pytest.fixture(scope="session")
def bad_input_world(tmp_path_factory, digits):
    """The bad-input tests' models, inputs and index (tests/bad_input.py), built once a session."""
    from bad_input import build_world

    return build_world(tmp_path_factory.mktemp("bad-input"), digits)


@pytest.fixture
def sandbox(bad_input_world, tmp_path, monkeypatch):
    """The bad-input world's store folder (d) as it was built, its index (db), the models (m) and
    inputs (i), and the snapshot a case is checked against (before); whatever a case changed there
    is put back afterwards. No data set is ever downloaded, and no cache outside tmp_path is used."""
    from bad_input import restore, snapshot

    world = bad_input_world
    if snapshot(world.base) != world.clean:
        restore(world)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SEMHASH_DATA", str(tmp_path / "data"))
    yield SimpleNamespace(
        d=world.base, db=str(world.base / "items.db"), m=world.m, i=world.i, tmp=tmp_path, before=world.clean
    )
    if snapshot(world.base) != world.clean:
        restore(world)
