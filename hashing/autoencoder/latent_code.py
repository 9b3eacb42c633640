"""A code read off a wider latent: PCA-ITQ of the bottleneck's activations, down to the code's bits.

With TrainConfig.latent_bits = L > 0 the autoencoder trains a bottleneck of w = max(bits, L) units
(with TrainConfig.members = m > 1, m models of w units each, merged by members.py: m * w units, and
the code is cut from their latents even when L is 0); once trained, PCA-ITQ (baselines.ITQ) is
fitted on the training items' deterministic activations (the bottleneck's logits: a Gaussian one's
means), and an item's code is

    [(a - mean) @ projection > 0]      a: (n, w) activations, projection: (w, bits)

Measured on 20 Newsgroups (P@100, benchmarks/README.md): a 32- or 64-unit model's means cut to 16
bits this way score above 16-bit models' signs for every seed tried; ITQ's rotation of a 64-unit
model's means scores above their signs, of a 128-unit one's as high or higher (by ITQ's seed). No
torch here: the model file's numpy reader (numpy_encoder.py) applies the same two tensors.
"""

from __future__ import annotations

import numpy as np

MEAN, PROJECTION = "code.mean", "code.projection"  # the two tensors' names in the model file


def width(bits: int, latent_bits: int, members: int = 1) -> int:
    """The bottleneck's units for a code of `bits` bits: bits itself, or max(bits, latent_bits);
    members times that for the merged model of several members."""
    return members * (max(bits, latent_bits) if latent_bits else bits)


def reduced(latent_bits: int, members: int = 1) -> bool:
    """Whether the code is PCA-ITQ of the latent (else the latent's signs)."""
    return bool(latent_bits) or members > 1


def fit(activations: np.ndarray, bits: int, seed: int = 0) -> dict[str, np.ndarray]:
    """activations: (n, width) float, the training items' -> {MEAN: (width,), PROJECTION:
    (width, bits)} float32: PCA to `bits` dimensions, then ITQ's rotation."""
    from ..baselines import ITQ  # scikit-learn's PCA: imported when training, never when reading

    itq = ITQ(bits=bits, seed=seed).fit(np.asarray(activations, dtype=np.float32))
    return {MEAN: itq.mean_, PROJECTION: itq.projection_}


def project(activations, reduction: dict[str, np.ndarray] | None) -> np.ndarray:
    """(n, width) activations -> (n, bits) float64 values whose sign is the code; without a
    reduction the activations themselves, as they are. In float64, as numpy_encoder computes its
    activations: the torch and numpy readers then decide the same bits wherever those agree."""
    if reduction is None:
        return activations
    a = np.asarray(activations, dtype=np.float64)
    return (a - reduction[MEAN].astype(np.float64)) @ reduction[PROJECTION].astype(np.float64)


def split(
    tensors: dict[str, np.ndarray], bits: int, latent_bits: int, units: int, members: int = 1
) -> tuple[dict, dict | None]:
    """A model file's tensors -> (the network's, the reduction's or None). ValueError when its
    architecture's bottleneck has other than width(bits, latent_bits, members) units, or the reduction's
    tensors are missing, unexpected or of the wrong shapes."""
    w = width(bits, latent_bits, members)
    if units != w:
        raise ValueError("architecture does not match the header's bits")
    network = {k: v for k, v in tensors.items() if k not in (MEAN, PROJECTION)}
    found = {k: tuple(tensors[k].shape) for k in (MEAN, PROJECTION) if k in tensors}
    if not reduced(latent_bits, members):
        if found:
            raise ValueError(f"unexpected tensors {', '.join(sorted(found))} for a code of the latent's signs")
        return network, None
    expected = {MEAN: (w,), PROJECTION: (w, bits)}
    if found != expected:
        raise ValueError(f"the latent code's tensors are {found}, expected {expected}")
    return network, {k: np.asarray(tensors[k], dtype=np.float32) for k in expected}
