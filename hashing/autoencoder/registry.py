"""The bottlenecks by name: the one table a new bottleneck (bottlenecks.Bottleneck) is added to.

The table is lazy, as hashing.methods' is: it names each class by module and class name, so that
the command line lists the names (`semhash train --bottleneck`) without importing torch. A third
field, the bottleneck's code rule (code_rules.py, no torch), lets a model file be read without
torch (numpy_encoder.py); a line without one is read by torch. The class must declare that very
rule (Bottleneck.code_rule): bottleneck_class checks.
"""

from __future__ import annotations

from importlib import import_module

from .code_rules import MeanCode, SignCode

# name -> (module, relative to this package or absolute, class[, code rule]); a model file records
# the name
BOTTLENECKS = {
    "noise": (".bottlenecks", "Noise", SignCode),
    "ste": (".bottlenecks", "StraightThrough", SignCode),
    "bernoulli": (".bottlenecks", "Bernoulli", SignCode),
    "real": (".bottlenecks", "Real", SignCode),
    "gaussian": (".variational", "Gaussian", MeanCode),
    "nash": (".variational", "BernoulliPrior", SignCode),
}


def bottleneck_class(name: str) -> type:
    """The Bottleneck subclass registered as name (ValueError for an unknown name, or for a code
    rule the class does not declare)."""
    if name not in BOTTLENECKS:
        raise ValueError(f"unknown bottleneck {name!r}: use one of {', '.join(BOTTLENECKS)}")
    module, cls = BOTTLENECKS[name][:2]
    kind = getattr(import_module(module, __package__), cls)
    rule = code_rule(name)
    if rule is not None and kind.code_rule is not rule:
        raise ValueError(
            f"bottleneck {name!r} is registered with code rule {rule.__name__}, its class declares {kind.code_rule}"
        )
    return kind


def code_rule(name: str) -> type | None:
    """The torch-free code rule registered for name, or None (unknown name, or read by torch)."""
    entry = BOTTLENECKS.get(name, ())
    return entry[2] if len(entry) > 2 else None
