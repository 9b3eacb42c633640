"""The .semhash file: safetensors tensors plus a JSON header that describes them.

The header (safetensors metadata key "semhash") carries format, format_version, method, bits,
input spec (shape, normalization, data fingerprint), config and library version, so a file can be
checked before it is used. Writes are atomic: a temp file in the same folder, then a rename.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .errors import ArtifactError
from .files import atomic_write

FORMAT = "semhash"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on its JSON header


def save(path: str | os.PathLike, tensors: dict[str, np.ndarray], header: dict) -> Path:
    """Write tensors and header to `path` atomically."""
    from safetensors.numpy import save_file

    from . import __version__

    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__, **header}
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata={FORMAT: json.dumps(full)}))


def read(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict, str]:
    """(tensors, header, SHA-256 of the file) from one read of the file."""
    path = _existing(path)
    data = path.read_bytes()
    header = _check_header(path, _metadata(path, data))
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a semhash model file (unreadable safetensors: {exc})") from None
    return tensors, header, hashlib.sha256(data).hexdigest()


def _metadata(path: Path, data: bytes) -> dict:
    """The safetensors metadata of a file's bytes: an 8-byte little-endian length, then JSON."""
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    try:
        if not 0 < size <= len(data) - 8:
            raise ValueError("bad header length")
        meta = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not a semhash model file (unreadable safetensors: {exc})") from None
    return meta if isinstance(meta, dict) else {}


def read_header(path: str | os.PathLike) -> dict:
    """The header of a .semhash file, validated, from the file's first bytes only; raises
    ArtifactError for anything else."""
    path = _existing(path)
    with open(path, "rb") as f:
        head = f.read(8)
        size = int.from_bytes(head, "little") if len(head) == 8 else 0
        data = head + f.read(min(size, MAX_HEADER_BYTES))
    return _check_header(path, _metadata(path, data))


def load(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors, header) of a .semhash file."""
    tensors, header, _ = read(path)
    return tensors, header


def _existing(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model file")
    return path


def _check_header(path: Path, meta: dict) -> dict:
    if FORMAT not in meta:
        raise ArtifactError(f"{path}: a safetensors file, but not a semhash model (no semhash header)")
    try:
        header = json.loads(meta[FORMAT])
    except json.JSONDecodeError:
        raise ArtifactError(f"{path}: corrupt semhash header") from None
    if (
        not isinstance(header, dict)
        or header.get("format") != FORMAT
        or not isinstance(header.get("format_version"), int)
    ):
        raise ArtifactError(f"{path}: corrupt semhash header")
    if header["format_version"] > FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: written by a newer semhash (format {header['format_version']}, "
            f"this one reads {FORMAT_VERSION}); upgrade semhash"
        )
    return header
