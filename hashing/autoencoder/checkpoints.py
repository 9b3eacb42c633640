"""Training checkpoints: a run's state written atomically every validation round, and read back
only by the configuration that wrote it (in any count of processes).

A checkpoint is a torch.save'd dict: model, optimizer (state dicts), step, stale, history, best,
best_state (KeepBest's kept metrics and weights) and config (TrainConfig.to_dict()).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import CheckpointMismatch
from ..files import atomic_write
from .config import TrainConfig
from .validation import KeepBest


def save(path: Path, cfg: TrainConfig, model, opt, step: int, history: list, keep: KeepBest) -> None:
    """Write the run's state to path (a crash leaves the previous checkpoint whole)."""
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "stale": keep.stale,
        "history": history,
        "best": keep.best,
        "best_state": keep.state,
        "config": cfg.to_dict(),
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load(path: Path, cfg: TrainConfig, device) -> dict:
    """The checkpoint at path, if this configuration wrote it (CheckpointMismatch if not)."""
    state = torch.load(path, map_location=device, weights_only=False)
    if _run_defining(state["config"]) != _run_defining(cfg.to_dict()):
        raise CheckpointMismatch(f"{path} was written by a different training configuration; start afresh")
    return state


def _run_defining(config: dict) -> dict:
    """A TrainConfig's fields that define the run: not whether it resumes, nor in how many processes
    (the steps, batches and weights mean the same in any count)."""
    config = TrainConfig.from_dict(config).to_dict()  # fields added since it was written: their defaults
    return {k: v for k, v in config.items() if k not in ("resume", "nproc")}
