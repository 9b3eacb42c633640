"""Code rules: how a bottleneck turns the encoder's outputs into a code, without torch.

A code rule is the part of a bottleneck (bottlenecks.py) that reading a model file needs: width,
logits and code, written so that they run on numpy arrays and torch tensors alike. A bottleneck
declares its rule (`Bottleneck.code_rule`) and its registry line names it (registry.py), so that
numpy_encoder.py encodes with an MLP autoencoder's file without importing torch.
"""

from __future__ import annotations


class SignCode:
    """One encoder output a bit: a: (n, bits) -> logits a itself, code [a > 0] (n, bits) bool."""

    @staticmethod
    def width(bits: int) -> int:
        """Encoder outputs the bottleneck takes for a code of `bits` bits."""
        return bits

    @staticmethod
    def logits(a):
        """(n, bits): the activations whose sign is the code."""
        return a

    def code(self, a):
        return self.logits(a) > 0


class MeanCode(SignCode):
    """A variational bottleneck's rule: a: (n, 2 bits) the mean and log-variance of each bit's
    Gaussian -> logits the mean (n, bits), code [mean > 0]: encoding is deterministic."""

    @staticmethod
    def width(bits: int) -> int:
        return 2 * bits

    @staticmethod
    def logits(a):
        return a[:, : a.shape[1] // 2]
