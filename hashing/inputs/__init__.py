"""Input kinds: how items of each kind are read, queried and shown (see base.py for the contract).

To add a kind: write its module beside these, subclassing `InputKind`, and add one line below.
"""

from . import features, images
from .base import InputKind, by_keyword, for_path, get, kinds, register

register(images.Images())
register(features.Features())

__all__ = ["InputKind", "by_keyword", "for_path", "get", "kinds", "register"]
