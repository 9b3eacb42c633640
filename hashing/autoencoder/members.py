"""Members: several autoencoders trained apart, kept as one model.

With TrainConfig.members = m > 1 the hasher trains m models of the same architecture one after
another (seeds seed, seed + 1, ...: their own initial weights, batches, noise, graph and held-out
split; the merged model is judged on the items held out of all of them) and merges them here into
one Autoencoder whose layers are block-diagonal: its encoder computes every member's encoder side by
side, so its latent is the members' latents concatenated, (n, m * units). The code is then PCA-ITQ
of that latent (latent_code.py), as for a single model's wider latent. The merged model is an
ordinary MLP of hidden widths m * hidden: the model file, its numpy reader and the read path are the
single model's; its encoder costs m times a member's.

Why: independently trained models make errors that are partly independent, and their latents side
by side rank better than one model's latent of the same total width. Measured on 20 Newsgroups
(P@100, `bench quality --dataset 20newsgroups`, benchmarks/README.md): the texts recipe's two
members score 0.617 / 0.660 / 0.673 / 0.681 at 16 / 32 / 64 / 128 bits against one model's 0.615 /
0.646 / 0.660 / 0.664, for twice the training (485 s at 64 bits on 2 cores); members sharing one
held-out split 0.652 at 32 bits. The texts recipe trains two; other inputs one unless asked.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..dataset import Dataset
from .config import TrainConfig, validate_config
from .model import Autoencoder
from .sparse_rows import as_rows
from .train import TrainResult, train, training_data
from .validation import MIN_QUERIES, Validation, validation_of


def train_members(cfg: TrainConfig, data: Dataset | None = None, progress: bool = True) -> TrainResult:
    """train(cfg), or with cfg.members = m > 1, m trainings merged into one model. Member i is
    cfg with seed cfg.seed + i: its own initial weights, batches, noise, graph and held-out split,
    so that together the members learn from nearly every item. The result's validation holds out
    the items no member trained on (what methods.train_model judges the merged model and PCA-ITQ on);
    its history is every member's rounds (each round's "member": i), its steps and seconds the
    members' sums, best the first member's with every member's figure in best["members"]."""
    validate_config(cfg)  # before any member trains
    if cfg.members == 1:
        return train(cfg, data, progress=progress)
    data = training_data(cfg, data)  # loaded once for every member
    configs = [replace(cfg, seed=cfg.seed + i, members=1) for i in range(cfg.members)]
    titles = [f"training member {i + 1}/{cfg.members}" for i in range(cfg.members)]
    results = [train(c, data, progress=progress, title=t) for c, t in zip(configs, titles)]
    seconds = sum(r.seconds for r in results)
    return TrainResult(
        model=merge([r.model for r in results]),
        history=[{**round_, "member": i} for i, r in enumerate(results) for round_ in r.history],
        best={**results[0].best, "members": [r.best.get("score") for r in results]},
        device=results[0].device,
        seconds=seconds,
        samples_per_second=sum(r.samples_per_second * r.seconds for r in results) / max(seconds, 1e-9),
        steps=sum(r.steps for r in results),
        validation=held_out_of_all(data, cfg, [r.validation for r in results]),
    )


def held_out_of_all(data: Dataset, cfg: TrainConfig, splits: list[Validation]) -> Validation:
    """The Validation of the items every member held out (splits: the members' own), ranked
    against the first member's validation database; its training rows are all the others (the
    members learnt from them)."""
    first = splits[0]
    everyone = np.logical_and.reduce([np.isin(first.val_rows, split.val_rows) for split in splits])
    held, seen = first.val_rows[everyone], first.val_rows[~everyone]
    val = validation_of(as_rows(data.x), data.labels, cfg, np.concatenate([first.train_rows, seen]), held)
    if val.criterion == "none":
        why = (
            f"{len(held)} items are held out of all {len(splits)} members: too few to judge the merged model by "
            f"(at least {MIN_QUERIES})"
        )
        val = replace(val, reason=why)
    return val


def merge(models: list[Autoencoder]) -> Autoencoder:
    """m trained MLP autoencoders of one architecture -> one whose encoder's outputs are theirs side
    by side (each bottleneck input chunk, e.g. a Gaussian's means then its log-variances, holds the
    members' in order) and whose decoder reads the concatenated codes and outputs the mean of the
    members' pre-activation outputs. Its activations(x): (n, m * units), the members' concatenated."""
    first = models[0].cfg
    if first.conv or any(model.cfg != first for model in models):
        raise ValueError("members must be MLP autoencoders of one architecture")
    m = len(models)
    cfg = replace(first, bits=m * first.bits, hidden=tuple(m * h for h in first.hidden))
    merged = Autoencoder(cfg)
    chunks = merged.bottleneck.width(first.bits) // first.bits  # encoder outputs per latent unit
    with torch.no_grad():
        enc = [_linears(model.encoder) for model in models]
        for i, layer in enumerate(_linears(merged.encoder)):
            parts = [e[i] for e in enc]
            if i == 0:  # every member reads the whole input
                layer.weight.copy_(torch.cat([p.weight for p in parts]))
                layer.bias.copy_(torch.cat([p.bias for p in parts]))
            else:
                out = chunks if i == len(enc[0]) - 1 else 1
                layer.weight.copy_(_block_diagonal([p.weight for p in parts], out))
                layer.bias.copy_(torch.cat([p.bias.reshape(out, -1) for p in parts], 1).reshape(-1))
        dec = [_linears(model.decoder) for model in models]
        last = len(dec[0]) - 1
        for i, layer in enumerate(_linears(merged.decoder)):
            parts = [d[i] for d in dec]
            if i == last:  # the mean of the members' outputs, from their side-by-side inputs
                layer.weight.copy_(torch.cat([p.weight / m for p in parts], 1))
                layer.bias.copy_(torch.stack([p.bias for p in parts]).mean(0))
            else:
                layer.weight.copy_(_block_diagonal([p.weight for p in parts], 1))
                layer.bias.copy_(torch.cat([p.bias for p in parts]))
    return merged.train(models[0].training)


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [layer for layer in module.modules() if isinstance(layer, nn.Linear)]


def _block_diagonal(weights: list[torch.Tensor], chunks: int) -> torch.Tensor:
    """Members' (chunks * o, i) weights -> (chunks * m * o, m * i): chunk c of the output holds
    every member's chunk c, member k's reading member k's inputs alone."""
    blocks = [w.reshape(chunks, -1, w.shape[1]) for w in weights]
    o, i = blocks[0].shape[1:]
    out = torch.zeros(chunks, len(weights) * o, len(weights) * i, dtype=weights[0].dtype)
    for k, block in enumerate(blocks):
        out[:, k * o : (k + 1) * o, k * i : (k + 1) * i] = block
    return out.reshape(-1, len(weights) * i)
