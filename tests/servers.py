"""Helpers for tests that talk to real `semhash serve` processes."""

import io

import numpy as np

from semhash.index_store.http.launcher import free_port  # noqa: F401  (re-exported for the tests)
from semhash.index_store.http.launcher import spawn_server as start_server  # noqa: F401


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((pixels * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
