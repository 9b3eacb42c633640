"""Atomic file writes: write to a temp file in the target's folder, then rename over the target, so a
reader (or a crash) sees the old file or the new one, never half of one. And the one file checksum."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


# Read once, at import: the umask is process-wide, and setting it to read it while a server's
# threads create files would give their files the wrong mode.
UMASK = _read_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """write(temp_path) fills a temp file next to `path`; it then replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes 0600 (and some writers, safetensors', make the file anew): a new file
        # keeps the user's umask
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def file_checksum(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes as 64 hex digits, read in 1 MiB blocks (any size, little memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    """Where semhash keeps downloads, extracted files and derived index structures:
    $XDG_CACHE_HOME/semhash, else ~/.cache/semhash."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "semhash"
