"""The training loss: reconstruction (binary cross-entropy for [0, 1] images, squared error for
real features, the multinomial likelihood of a document's words for bags of words), the
regularizers' penalties on the codes, the neighbour pairs' term (the spectral
contrastive loss, or InfoNCE at a temperature) and the bottleneck's own term.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from .config import TrainConfig
from .regularizers import code_penalties

NEGATIVE_WEIGHT = 4.0  # measured: 4 keeps bits balanced where 1 let them collapse to constants
BALANCE_WEIGHT = 4.0


def loss_fn(x_hat, x, h, cfg: TrainConfig, output: str, paired: bool, extra: torch.Tensor | None = None):
    """Reconstruction per item (summed over its values) plus the regularizers and the bottleneck's
    own term (extra: a scalar, from its forward); (loss, parts). x_hat, x: (n, ...); h: (n, bits),
    with pairs (paired) rows i and n/2 + i a pair; output: the decoder's (model.ModelConfig.output)."""
    flat_hat, flat = x_hat.reshape(len(x), -1), x.reshape(len(x), -1)
    if output == "sigmoid":
        rec = F.binary_cross_entropy(flat_hat.clamp(1e-6, 1 - 1e-6), flat, reduction="sum") / len(x)
    elif output == "multinomial":
        share = cfg.reg.neighbour_words if paired else 0.0
        rec = multinomial_loss(flat_hat, with_partners_words(flat, share) if share > 0 else flat)
    else:
        rec = F.mse_loss(flat_hat, flat, reduction="sum") / len(x)
    parts = {"reconstruction": rec, **code_penalties(h, cfg.reg)}
    if paired and cfg.reg.neighbours > 0:
        pair_loss = spectral_pair_loss if cfg.reg.temperature <= 0 else partial(nce_pair_loss, t=cfg.reg.temperature)
        parts["neighbours"] = cfg.reg.neighbours * pair_loss(h)
    if extra is not None:
        parts["bottleneck"] = extra
    return sum(parts.values()), parts


def multinomial_loss(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """logits: (n, vocabulary) the decoder's scores; weights: (n, vocabulary) >= 0 the document's
    word weights (TF-IDF or counts) -> the mean over documents of the negative log-likelihood of
    their words under softmax(logits), each document's weights scaled to sum to 1 (VDSH's and
    NASH's decoder: a distribution over the vocabulary, so that long documents do not dominate)."""
    share = weights / weights.sum(1, keepdim=True).clamp(min=1e-12)
    return -(share * F.log_softmax(logits, dim=1)).sum(1).mean()


def with_partners_words(weights: torch.Tensor, share: float) -> torch.Tensor:
    """weights: (2n, vocabulary) >= 0, rows i and n+i a neighbour pair -> (2n, vocabulary) each
    row's word distribution (scaled to sum to 1) mixed with its partner's, the partner's weighing
    `share`: a document is asked for the words of its topic, not only its own."""
    own = weights / weights.sum(1, keepdim=True).clamp(min=1e-12)
    n = len(own) // 2
    return (1 - share) * own + share * torch.cat([own[n:], own[:n]])


def spectral_pair_loss(h: torch.Tensor) -> torch.Tensor:
    """h: (2n, bits), rows i and n+i a neighbour pair. With s = 2h - 1 in [-1, 1]^bits, the spectral
    contrastive loss -2 E[s_i.s_j / b] + E[(s_i.s_r / b)^2] over neighbour pairs (i, j) and unrelated
    pairs (i, r): neighbours agree, unrelated codes decorrelate (HaoChen et al. 2021: its minimiser is
    the graph's spectral embedding, the relaxation spectral hashing solves). The unrelated term is
    weighted up and each bit's batch mean kept near 0: otherwise every code collapses to one."""
    n, bits = len(h) // 2, h.shape[1]
    s = 2 * h - 1
    si, sj = s[:n], s[n:]
    pos = (si * sj).sum(1).mean() / bits
    cross = si @ sj.T / bits
    off = cross - torch.diag(torch.diagonal(cross))
    unrelated = (off**2).sum() / max(n * (n - 1), 1)
    return -2 * pos + NEGATIVE_WEIGHT * unrelated + BALANCE_WEIGHT * (s.mean(0) ** 2).mean()


def nce_pair_loss(h: torch.Tensor, t: float) -> torch.Tensor:
    """h: (2n, bits), rows i and n+i a pair. InfoNCE over the batch (contrastive hashing, as in
    CIBHash, Qiu et al. 2021): each code must pick out its partner among the 2n - 1 others by the
    similarity s_i.s_j / b (= 1 - 2 Hamming / b for binary codes) at temperature t. Its softmax
    repels the nearest unrelated codes most, where the spectral loss repels all alike."""
    m, bits = len(h), h.shape[1]
    s = 2 * h - 1
    logits = (s @ s.T / bits).fill_diagonal_(-1e4) / t  # (fill_diagonal_ before /t: finite in bf16)
    partner = (torch.arange(m, device=h.device) + m // 2) % m
    return F.cross_entropy(logits, partner) + BALANCE_WEIGHT * (s.mean(0) ** 2).mean()
