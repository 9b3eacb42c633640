"""The autoencoder as a Hasher: same interface as the baselines (fit, encode, save, load_hasher).

Training makes one; load_hasher reads an MLP's model file back as numpy_encoder.NumpyAEHasher
(no torch), a convolutional one as an AEHasher."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import torch

from ..codes import pack
from ..errors import ParameterError
from ..hasher import Hasher, as_float
from . import latent_code
from .config import TrainConfig
from .members import train_members
from .model import Autoencoder, ModelConfig
from .regularizers import Regularizers
from .sparse_rows import as_rows
from .train import TrainResult
from .validation import Validation


def _as_dict(reg) -> dict:
    """Regularizers given as a dict of some of their fields, or as Regularizers."""
    return reg if isinstance(reg, dict) else reg.to_dict()


class AEHasher(Hasher):
    """Learned state: model_ (an Autoencoder), model_config_, reduction_ (latent_code's tensors
    when the code is PCA-ITQ of the latent, TrainConfig.latent_bits; else None), validation_
    (metrics of the kept weights), selection_ (the model-selection criterion and why; saved in the header) and
    training_ (device, seconds, speed, steps, history). After fit() in this process,
    validation_set_ is the validation.Validation the weights were selected by (not saved).

    Options are TrainConfig's fields (bottleneck, hidden, steps, epochs, reg, device, ...); they are
    stored as given and checked by fit().
    """

    method = "ae"

    def __init__(self, bits: int = 32, seed: int = 0, progress: bool = False, **options):
        super().__init__(bits, seed)
        self.progress = progress
        self.options = options
        self.model_: Autoencoder | None = None
        self.model_config_: ModelConfig | None = None
        self.reduction_: dict[str, np.ndarray] | None = None
        self.validation_: dict = {}
        self.selection_: dict = {}
        self.training_: dict = {}
        self.validation_set_: Validation | None = None

    def train_config(self) -> TrainConfig:
        """The TrainConfig these options make (ParameterError for unknown ones)."""
        options = dict(self.options)
        unknown = set(options) - {f.name for f in fields(TrainConfig)}
        if unknown:
            raise ParameterError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        recipe = dict(self._recipe())
        reg = {**TrainConfig().reg.to_dict(), **recipe.pop("reg", {}), **_as_dict(options.get("reg") or {})}
        options = {**recipe, **options, "reg": Regularizers(**reg)}
        if "hidden" in options:
            options["hidden"] = tuple(options["hidden"])
        return TrainConfig(bits=self.bits, seed=self.seed, **options)

    def _recipe(self) -> dict:
        """The recipe of the input kind this hasher is fitted on (inputs.InputKind.recipe), {} before."""
        if self.spec_ is None:
            return {}
        from .. import inputs

        return inputs.get(self.spec_.kind).recipe

    def config(self) -> dict:
        d = self.train_config().to_dict()
        for transient in ("checkpoint", "resume", "threads", "data_root", "nproc"):  # how, not what, is trained
            d.pop(transient)
        return d

    def summary(self) -> dict:
        return {
            "validation": dict(self.validation_),
            "selection": dict(self.selection_),
            "training": {k: v for k, v in self.training_.items() if k != "history"},
        }

    def _fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        from ..dataset import Dataset

        spec = self.spec_
        data = Dataset(spec.dataset or "array", X, y, spec.normalization, "fit", kind=spec.kind)
        cfg = self.train_config()
        self._keep(train_members(cfg, data, progress=self.progress))
        self.reduction_ = None
        if latent_code.reduced(cfg.latent_bits, cfg.members):  # PCA-ITQ of the training items' activations
            self.reduction_ = latent_code.fit(self._latent(X), self.bits, self.seed)

    def _keep(self, result: TrainResult) -> None:
        self.model_ = result.model
        self.model_config_ = result.model.cfg
        self.validation_ = result.best
        val = result.validation
        self.validation_set_ = val
        self.selection_ = {
            "criterion": val.criterion,
            "reason": val.reason,
            "held_out": len(val.val_rows),
            "database": val.n_db,
        }
        self.training_ = {
            "device": result.device,
            "seconds": result.seconds,
            "samples_per_second": result.samples_per_second,
            "steps": result.steps,
            "epochs": len(result.history),  # validation rounds (a pass each when trained by epochs)
            "history": result.history,
        }

    def activations(self, X) -> np.ndarray:
        """Continuous pre-binarization activations: (n, bits) float32 (float64 with latent_bits:
        latent_code.project), the code [> 0] (kept for re-ranking).
        X: (n, *shape) items, or the same items flattened (n, d)."""
        self._check_fitted()
        X = as_float(X.x if hasattr(X, "fingerprint") else X)
        if X.shape[1:] != tuple(self.spec_.shape) and X[0].size == int(np.prod(self.spec_.shape)):
            X = X.reshape(len(X), *self.spec_.shape)
        self.spec_.check(X.shape[1:])
        return self._activations(X)

    def _encode(self, X: np.ndarray) -> np.ndarray:
        return pack(self._activations(X) > 0)

    def _activations(self, X: np.ndarray) -> np.ndarray:
        return latent_code.project(self._latent(X), self.reduction_)

    def _latent(self, X: np.ndarray) -> np.ndarray:
        """(n, latent_code.width(bits, latent_bits, members)) float32: the bottleneck's deterministic activations."""
        return self.model_.activations(as_rows(X)).numpy()  # sparse rows made dense a batch at a time

    def header_extra(self) -> dict:
        summary = self.summary()
        return {
            "architecture": self.model_config_.to_dict(),
            "validation": _plain(summary["validation"]),
            "selection": summary["selection"],
            "training": _plain(summary["training"]),
        }

    def _state(self) -> dict[str, np.ndarray]:
        state = {k: v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}
        return {**state, **(self.reduction_ or {})}

    def _set_state(self, tensors: dict[str, np.ndarray], header: dict | None = None) -> None:
        arch = (header or {}).get("architecture")
        cfg = self.train_config()
        mcfg = (
            ModelConfig.from_dict(arch)
            if arch
            else ModelConfig(
                input_shape=tuple(self.spec_.shape),
                bits=latent_code.width(self.bits, cfg.latent_bits, cfg.members),
                bottleneck=cfg.bottleneck,
                hidden=tuple(cfg.members * h for h in cfg.hidden),
                conv=cfg.conv,
                noise_std=cfg.noise_std,
            )
        )
        if tuple(mcfg.input_shape) != tuple(self.spec_.shape):
            raise ValueError("architecture does not match the header's input shape")
        tensors, self.reduction_ = latent_code.split(tensors, self.bits, cfg.latent_bits, mcfg.bits, cfg.members)
        model = Autoencoder(mcfg)
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, strict=True)
        model.eval()
        self.model_, self.model_config_ = model, mcfg
        self.validation_ = (header or {}).get("validation", {})
        self.selection_ = (header or {}).get("selection", {})
        self.training_ = (header or {}).get("training", {})


def _plain(d: dict) -> dict:
    """JSON-friendly copy (numpy scalars to floats)."""
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in d.items()}
