"""An MLP autoencoder's model file read without torch: its encoder, a few matrix products in numpy.

hashing.methods.load_hasher asks `reader(header)` which class reads an "ae" file: NumpyAEHasher when
the file is an MLP autoencoder (no conv) of an architecture this module knows whose bottleneck's
registry line names a code rule (code_rules.py); None otherwise, and torch's AEHasher reads it.
Training always uses AEHasher. Importing torch costs a read-only command 2-3 s and ~700 MB; these
products cost milliseconds.

The encoder is model.py's: Flatten, then Linear + ReLU for each hidden width and a last Linear to
the bottleneck's width(bits) outputs; the code is the rule's code of those outputs. It is computed
in float64 (torch computes in float32): see `_forward` for why and how its codes compare.
"""

from __future__ import annotations

import numpy as np

from ..codes import pack
from ..errors import ParameterError
from ..hasher import Hasher, as_float, is_sparse
from . import latent_code
from .layout import mlp_sizes
from .registry import code_rule

# ModelConfig's fields (model.py): an architecture with any other is torch's to read, since a new
# field may change the encoder (tests/test_numpy_encoder.py fails when ModelConfig gains one)
KNOWN_FIELDS = frozenset({"input_shape", "bits", "bottleneck", "hidden", "conv", "noise_std", "output"})
BATCH = 4096  # items a pass: float64 activations of 4,096 x 1,000 are 33 MB


def reader(header: dict) -> type[Hasher] | None:
    """NumpyAEHasher if it computes the codes of the "ae" model file with this header, else None."""
    arch = header.get("architecture")
    if not isinstance(arch, dict) or set(arch) - KNOWN_FIELDS or arch.get("conv", False) is not False:
        return None
    if not isinstance(arch.get("bottleneck"), str) or code_rule(arch["bottleneck"]) is None:
        return None
    return NumpyAEHasher


def mlp_shapes(arch: dict) -> dict[str, tuple[int, ...]]:
    """The state dict of model.py's MLP Autoencoder of this architecture (ModelConfig.to_dict()):
    tensor name -> shape, encoder and decoder."""
    rule = code_rule(arch["bottleneck"])
    d = int(np.prod(arch["input_shape"]))
    hidden, bits = [int(h) for h in arch["hidden"]], int(arch["bits"])
    shapes = {}
    # nn.Sequential(Flatten, Sequential(Linear, ReLU, ...)) and Sequential(Sequential(Linear, ReLU, ...), Unflatten)
    encoder, decoder = mlp_sizes(d, hidden, bits, rule.width(bits), arch.get("output", "sigmoid"))
    for prefix, sizes in (("encoder.1", encoder), ("decoder.0", decoder)):
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            shapes[f"{prefix}.{2 * i}.weight"], shapes[f"{prefix}.{2 * i}.bias"] = (b, a), (b,)
    return shapes


class NumpyAEHasher(Hasher):
    """An MLP autoencoder read from its model file, encoding in numpy. Same options and header as
    AEHasher (validation_, selection_, training_, activations); it cannot fit (train with
    make_hasher("ae")), and saving writes the weights it read."""

    method = "ae"

    def __init__(self, bits: int = 32, seed: int = 0, progress: bool = False, **options):
        super().__init__(bits, seed)  # progress: AEHasher's argument, nothing to report here
        self.options = options
        self.architecture_: dict = {}
        self.validation_: dict = {}
        self.selection_: dict = {}
        self.training_: dict = {}
        self.tensors_: dict[str, np.ndarray] = {}
        self.rule_ = None  # the bottleneck's code rule (code_rules.py)
        self.reduction_: dict[str, np.ndarray] | None = None  # latent_code's tensors (latent_bits), or None
        self.layers_: list[tuple[np.ndarray, np.ndarray]] = []

    def config(self) -> dict:
        return {"bits": self.bits, "seed": self.seed, **self.options}

    def summary(self) -> dict:
        training = {k: v for k, v in self.training_.items() if k != "history"}
        return {"validation": dict(self.validation_), "selection": dict(self.selection_), "training": training}

    def header_extra(self) -> dict:
        return {
            "architecture": self.architecture_,
            "validation": self.validation_,
            "selection": self.selection_,
            "training": self.training_,
        }

    def activations(self, X) -> np.ndarray:
        """The code's real-valued activations (the bottleneck's logits, or their latent_code
        projection; the code is [> 0]): (n, bits) float64 (AEHasher's are float32 without a
        projection). X: (n, *shape) items, or the same items flattened (n, d)."""
        self._check_fitted()
        X = as_float(X.x if hasattr(X, "fingerprint") else X)
        if X.shape[1:] != tuple(self.spec_.shape) and X[0].size == int(np.prod(self.spec_.shape)):
            X = X.reshape(len(X), *self.spec_.shape)
        self.spec_.check(X.shape[1:])
        return self._logits(X)

    def _fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        raise ParameterError("an autoencoder read from its model file only encodes: train with make_hasher('ae')")

    def _encode(self, X: np.ndarray) -> np.ndarray:
        return pack(self._logits(X) > 0)

    def _logits(self, X: np.ndarray) -> np.ndarray:
        x = X if is_sparse(X) else X.reshape(len(X), -1)  # sparse rows (texts' TF-IDF) stay sparse
        n = x.shape[0]
        logits = (self.rule_.logits(self._forward(x[i : i + BATCH])) for i in range(0, n, BATCH))
        parts = [latent_code.project(part, self.reduction_) for part in logits]
        return np.concatenate(parts) if parts else np.zeros((0, self.bits))

    def _forward(self, x: np.ndarray) -> np.ndarray:
        """x: (n, d) float32, dense or scipy.sparse csr (the first layer is then csr @ W, the
        only dense product being its (n, hidden) result) -> the encoder's outputs (n, width(bits)) float64.

        In float64, not torch's float32: every float32 library sums the products in its own order,
        and torch's changes with the batch size, so float32 codes are not defined bit for bit where
        a logit is within rounding (~1e-6) of 0; float64 decides those the same for a batch and for
        one item. Measured (issue 25): 12 models (default sizes, each bottleneck at 16, 32 and 64
        bits), 360,000 codes (MNIST's 10,000 test images and 20,000 random inputs a model, of
        scales 1e-3 to 1e3): 2 of 13.4 million bits differed from torch's batched codes, where
        torch's logits were 1.2e-7 and -7.5e-9, and both were this function's bits when torch
        encoded the item alone (a float32 numpy forward missed the same 2)."""
        h = x.astype(np.float64)
        for i, (weight_t, bias) in enumerate(self.layers_):
            h = h @ weight_t
            h += bias
            if i < len(self.layers_) - 1:
                np.maximum(h, 0.0, out=h)  # ReLU
        return h

    def _state(self) -> dict[str, np.ndarray]:
        return dict(self.tensors_)

    def _set_state(self, tensors: dict[str, np.ndarray], header: dict | None = None) -> None:
        header = header or {}
        arch, latent = header["architecture"], int(self.options.get("latent_bits") or 0)
        if tuple(arch["input_shape"]) != tuple(self.spec_.shape):
            raise ValueError("architecture does not match the header's input shape")
        all_tensors = tensors
        members = int(self.options.get("members") or 1)
        tensors, reduction = latent_code.split(tensors, self.bits, latent, arch["bits"], members)
        expected = mlp_shapes(arch)
        found = {name: tuple(t.shape) for name, t in tensors.items()}
        if found != expected:  # what torch's strict load_state_dict refuses
            wrong = sorted(set(found) ^ set(expected) | {k for k in found if found[k] != expected.get(k)})
            raise ValueError(f"the weights do not match the architecture: {', '.join(wrong[:4])}")
        layers = len(arch["hidden"]) + 1
        self.layers_ = [
            (
                tensors[f"encoder.1.{2 * i}.weight"].astype(np.float64).T,
                tensors[f"encoder.1.{2 * i}.bias"].astype(np.float64),
            )
            for i in range(layers)
        ]
        self.tensors_, self.architecture_, self.rule_ = all_tensors, dict(arch), code_rule(arch["bottleneck"])()
        self.reduction_ = reduction
        self.validation_ = header.get("validation", {})
        self.selection_ = header.get("selection", {})
        self.training_ = header.get("training", {})
