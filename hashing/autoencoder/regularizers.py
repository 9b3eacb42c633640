"""The training loss's optional terms and the input's corruptions: Regularizers (their weights),
the denoising corruption, the random affine views of images, and the penalties on a batch's codes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass
class Regularizers:
    """Optional terms of the training loss, each weighted (0 = off).

    mask_prob / input_noise: denoising corruption of the input (masking; additive Gaussian);
    balance: each bit on for half the data, (mean_batch(h) - 0.5)^2;
    decorrelation: off-diagonal covariance of the bits, squared;
    sparsity: mean activation of h (pushes bits off; use with care);
    neighbours: Hamming-preservation of the data's k-NN graph, mean (h_i - h_j)^2 over sampled
      neighbour pairs (the objective of spectral/graph hashing, here as an AE regularizer).
    """

    mask_prob: float = 0.0
    input_noise: float = 0.0
    balance: float = 0.0
    decorrelation: float = 0.0
    sparsity: float = 0.0
    neighbours: float = 0.0
    k_neighbours: int = 10
    neighbour_space: str = "pca50"  # where the k-NN graph is computed: "pca50" or "input"
    # > 1, for a graph searched without views: of each item's neighbour_pool * k nearest, the graph
    # keeps the k that share most of their own neighbour_pool * k nearest with it (shared-nearest-
    # neighbour similarity); 1: the k nearest
    neighbour_pool: int = 1
    # images with views (affine > 0): the graph's search also runs over this many random views of
    # every item, so that an item's neighbours include those a small transform brings near it
    graph_views: int = 0
    # images only: a small random affine transform of each training image (strength 1: rotation
    # within 10 degrees, scale 0.9-1.1, shift within 2 pixels of 28, MNIST's standard augmentation),
    # reconstructed to the untransformed image; and the share of items whose pair partner for the
    # neighbours term is a second transform of themselves instead of a k-NN neighbour
    affine: float = 0.0
    self_pairs: float = 0.0
    temperature: float = 0.0  # > 0: the pairs' term is InfoNCE at this temperature, else the spectral loss
    # bags of words with neighbour pairs: the share of the reconstruction's target taken from the
    # pair partner's words (each document predicts its own words and its neighbour's, as NbrReg,
    # Chaidaroon et al. 2018, does with its neighbourhood); 0: its own words alone. Without the
    # neighbours term there are no pairs, and the target is the document's own (the texts recipe
    # sets it, so that a run with neighbours 0 still trains)
    neighbour_words: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def corrupt(x: torch.Tensor, reg: Regularizers) -> torch.Tensor:
    """Denoising-AE corruption of a training batch."""
    if reg.mask_prob > 0:
        x = x * (torch.rand_like(x) >= reg.mask_prob)
    if reg.input_noise > 0:
        x = x + reg.input_noise * torch.randn_like(x)
    return x


def affine_jitter(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x: (n, C, H, W) images -> each under its own random affine transform (rotation within
    10*strength degrees, scale within 1 +- 0.1*strength, shift within 2*strength pixels per 28),
    resampled bilinearly with a zero border. generator: where the transforms are drawn from
    (default: torch's global generator)."""
    n, device = len(x), x.device
    uniform = lambda *shape: torch.rand(*shape, device=device, generator=generator) * 2 - 1  # noqa: E731
    angle = uniform(n) * math.radians(10.0) * strength
    scale = 1 + uniform(n) * 0.1 * strength
    shift = uniform(n, 2) * (2.0 / 14.0) * strength  # 2 px of 28 in [-1, 1] coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def code_penalties(h: torch.Tensor, reg: Regularizers) -> dict[str, torch.Tensor]:
    """Regularizer terms on bottleneck outputs h: (n, bits) in [0, 1]."""
    terms = {}
    if reg.balance > 0:
        terms["balance"] = reg.balance * ((h.mean(0) - 0.5) ** 2).mean()
    if reg.decorrelation > 0:
        c = h - h.mean(0)
        cov = c.T @ c / max(len(h) - 1, 1)
        off = cov - torch.diag(torch.diagonal(cov))
        terms["decorrelation"] = reg.decorrelation * (off**2).sum() / h.shape[1]
    if reg.sparsity > 0:
        terms["sparsity"] = reg.sparsity * h.mean()
    return terms
