"""Helpers for tests that talk to real `semhash serve` processes."""

import io

import numpy as np

from semhash.benchmarks.bench_serve import free_port, start_server  # noqa: F401  (the benchmark's own)


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((pixels * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
