"""Shared fixtures: small real data (scikit-learn digits) and the real MNIST when it is there."""
import os

import numpy as np
import pytest

from hashing.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    """(train, test) of scikit-learn's bundled 8x8 digits: 1,500 + 297 labelled images."""
    return load_dataset("digits", "train"), load_dataset("digits", "test")


@pytest.fixture(scope="session")
def mnist():
    """(database, queries) of the project protocol: 60,000 training images, first 1,000 test images.

    Skipped when the MNIST files are not under the data root, unless SEMHASH_REQUIRE_MNIST=1 (CI).
    """
    from hashing.errors import DataError

    try:
        return load_dataset("mnist", "train", download=False), load_dataset("mnist", "test", download=False).subset(1000)
    except DataError as exc:
        if os.environ.get("SEMHASH_REQUIRE_MNIST") == "1":
            raise
        pytest.skip(f"real MNIST not available: {exc}")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
