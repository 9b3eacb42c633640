"""Input kinds: how items of each kind are read, queried and shown (see base.py for the contract).

To add a kind: write its module beside these, subclassing `InputKind`, and add one line below.
"""

from ..errors import ParameterError
from . import features, images, texts
from .base import InputKind, by_keyword, for_path, get, kinds, register

register(images.Images())
register(features.Features())
register(texts.Texts())


def featurized(data, **options):
    """A Dataset made ready to fit a model on: its kind's featurizer fitted on it (options: the
    featurizer's, e.g. texts' vocabulary size) and applied, so that x holds the model's inputs and
    `featurizer` is kept with them (a model fitted on them saves it); the data itself for kinds
    without one."""
    if data.featurizer is not None:  # featurized already
        return data
    kind = get(data.kind)
    featurizer = kind.fit_featurizer(data, **options)
    if featurizer is None and options:  # never a silently ignored option
        raise ParameterError(f"items of kind {kind.name} have no featurizer to take {', '.join(sorted(options))}")
    return data if featurizer is None else kind.featurize(data, featurizer)


def load_featurizer(kind: str, header: dict):
    """The featurizer of kind `kind` that a model file's header describes (input.featurizer)."""
    return get(kind).load_featurizer(header)


__all__ = ["InputKind", "by_keyword", "featurized", "for_path", "get", "kinds", "load_featurizer", "register"]
