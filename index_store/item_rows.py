"""A stored item's row as a reader gets it: its values checked, its source kept in its folder.

    label, source = checked(item, "mnist")      # StoreError naming the index for a hand-edited row
    inside("/data/photos", "cats/1.png")        # '/data/photos/cats/1.png'
    inside("/data/photos", "../../etc/hostname")  # None: no source leads out of the index's folder

A database is a file a user may be handed: its rows are input like any other. A label stored as
text, or a source that climbs out of the image folder, must not become a traceback or a file that
a thumbnail opens.
"""

from __future__ import annotations

import os

import numpy as np

from ..hashing.errors import StoreError


def checked(item: dict, name: str) -> tuple[int | None, str | None]:
    """(label, source) of an item row {key, label, source, ...}: an integer or None, text or None;
    StoreError naming index `name` for anything else (text in the label column, a blob of a source)."""
    label, source = item.get("label"), item.get("source")
    if label is not None and (isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer))):
        raise StoreError(f"index {name!r} is damaged: item {item.get('key')!r:.80} has the label {label!r:.40}")
    if source is not None and not isinstance(source, str):
        raise StoreError(f"index {name!r} is damaged: item {item.get('key')!r:.80} has a source that is not text")
    return label, source


def relative_path(source: str) -> bool:
    """A source stored relative to the index's folder (not a URI, not 'upload:...', not absolute)."""
    return not os.path.isabs(source) and ":" not in source.split("/", 1)[0]


def inside(folder: str | None, source: str) -> str | None:
    """The relative source resolved in folder (None: the index records no folder, and the source
    stays as stored), or None when it leads out of the folder: no '../' leaves it, whatever it is."""
    path = os.path.normpath(os.path.join(folder or "", source))
    if path == os.pardir or path.startswith(os.pardir + os.sep):
        return None
    if folder is None:
        return source
    base = os.path.abspath(folder)
    return path if os.path.commonpath([base, os.path.abspath(path)]) == base else None
