"""The autoencoder as a Hasher: same interface as the baselines (fit, encode, save, load_hasher)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import torch

from .codes import pack
from .hasher import Hasher, _as_float
from .models import Autoencoder, ModelConfig, Regularizers
from .train import TrainConfig, TrainResult, train


class AEHasher(Hasher):
    """Learned state: model_ (an Autoencoder) and validation_ (metrics of the kept weights).

    Options are TrainConfig's fields (bottleneck, hidden, epochs, reg, device, ...).
    """

    method = "ae"

    def __init__(self, bits: int = 32, seed: int = 0, progress: bool = False, **options):
        super().__init__(bits, seed)
        names = {f.name for f in fields(TrainConfig)}
        unknown = set(options) - names
        if unknown:
            raise TypeError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        if isinstance(options.get("reg"), dict):
            options["reg"] = Regularizers(**options["reg"])
        if "hidden" in options:
            options["hidden"] = tuple(options["hidden"])
        self.train_config = TrainConfig(bits=bits, seed=seed, **options)
        self.progress = progress
        self.model_: Autoencoder | None = None
        self.validation_: dict = {}
        self.model_config_: ModelConfig | None = None
        self.training_: dict = {}

    def config(self) -> dict:
        d = self.train_config.to_dict()
        for transient in ("checkpoint", "resume", "threads", "data_root"):
            d.pop(transient)
        return d

    def fit(self, X, spec=None) -> AEHasher:
        """X: a hashing.data.Dataset (labels make the validation mAP; else bit balance is tracked)."""
        from .data import Dataset
        from .hasher import InputSpec

        data = X if isinstance(X, Dataset) else _as_dataset(X)
        result: TrainResult = train(self.train_config, data, progress=self.progress)
        self.spec_ = spec or InputSpec.of(data)
        self._keep(result)
        return self

    def _keep(self, result: TrainResult) -> None:
        self.model_ = result.model
        self.model_config_ = result.model.cfg
        self.validation_ = result.best
        self.training_ = {
            "device": result.device,
            "seconds": result.seconds,
            "samples_per_second": result.samples_per_second,
            "epochs": len(result.history),
            "history": result.history,
        }

    def activations(self, X) -> np.ndarray:
        """Continuous pre-binarization activations: (n, bits) float32 (kept for re-ranking)."""
        self._check_fitted()
        X = self._as_items(X)
        return self.model_.activations(torch.from_numpy(X)).numpy()

    def _encode_flat(self, X: np.ndarray) -> np.ndarray:
        return pack(self.activations(X.reshape(len(X), *self.spec_.shape)) > 0)

    def _as_items(self, X) -> np.ndarray:
        X = _as_float(X.x if hasattr(X, "fingerprint") else X)
        return np.ascontiguousarray(X).reshape(len(X), *self.spec_.shape)

    def header_extra(self) -> dict:
        return {
            "architecture": self.model_config_.to_dict(),
            "validation": _plain(self.validation_),
            "training": _plain({k: v for k, v in self.training_.items() if k != "history"}),
        }

    def _state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}

    def _set_state(self, tensors: dict[str, np.ndarray], header: dict | None = None) -> None:
        arch = (header or {}).get("architecture")
        mcfg = (
            ModelConfig.from_dict(arch)
            if arch
            else ModelConfig(
                input_shape=tuple(self.spec_.shape),
                bits=self.bits,
                bottleneck=self.train_config.bottleneck,
                hidden=self.train_config.hidden,
                conv=self.train_config.conv,
                noise_std=self.train_config.noise_std,
            )
        )
        if tuple(mcfg.input_shape) != tuple(self.spec_.shape) or mcfg.bits != self.bits:
            raise ValueError("architecture does not match the header's input shape or bits")
        model = Autoencoder(mcfg)
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, strict=True)
        model.eval()
        self.model_, self.model_config_ = model, mcfg
        self.validation_ = (header or {}).get("validation", {})
        self.training_ = (header or {}).get("training", {})


def _as_dataset(X):
    from .data import IDENTITY, Dataset

    t = torch.as_tensor(np.asarray(X, dtype=np.float32))
    return Dataset("array", t, None, IDENTITY, "in-memory array")


def _plain(d: dict) -> dict:
    """JSON-friendly copy (numpy scalars to floats)."""
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in d.items()}
