"""Autoencoders with a binary bottleneck (Salakhutdinov & Hinton's semantic hashing, and kin).

Encoder f: x -> a (pre-binarization activations, `bits` of them); bottleneck: a -> h in [0, 1]
during training and exact bits {0, 1} when encoding; decoder g: h -> x_hat.

Bottleneck methods:
  noise      sigmoid(a + N(0, noise_std^2)) while training: the noise forces the units to saturate
             so that thresholding at 0.5 loses little (Salakhutdinov & Hinton 2009);
  ste        hard threshold [a > 0] forward, the gradient of sigmoid(a) backward (straight-through);
  bernoulli  a sample of Bernoulli(sigmoid(a)) forward, straight-through gradient to the probability;
  real       a continuous bottleneck (a itself), for the classic AE-vs-PCA comparison; its codes
             threshold a at 0.
Encoding always returns [a > 0], i.e. sigmoid(a) > 0.5, so codes are exactly binary for every method.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

METHODS = ("noise", "ste", "bernoulli", "real")


@dataclass
class ModelConfig:
    """Architecture. hidden: the MLP's hidden widths, mirrored in the decoder (Hinton &
    Salakhutdinov's 784-1000-500-250-bits by default); conv: a small convolutional encoder/decoder
    for images instead of the MLP."""

    input_shape: tuple[int, ...] = (1, 28, 28)
    bits: int = 32
    bottleneck: str = "noise"
    hidden: tuple[int, ...] = (1000, 500, 250)
    conv: bool = False
    noise_std: float = 4.0
    output: str = "sigmoid"  # "sigmoid" for [0, 1] images (BCE), "linear" for real features (MSE)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"], d["hidden"] = list(self.input_shape), list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d["input_shape"], d["hidden"] = tuple(d["input_shape"]), tuple(d["hidden"])
        return cls(**d)


class Bottleneck(nn.Module):
    """a: (n, bits) -> h: (n, bits); binary or nearly so while training, per `method`."""

    def __init__(self, method: str, noise_std: float = 4.0):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown bottleneck {method!r}: use one of {', '.join(METHODS)}")
        self.method, self.noise_std = method, noise_std

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if self.method == "real":
            return a
        p = torch.sigmoid(a)
        if not self.training:
            return (a > 0).to(a.dtype)
        if self.method == "noise":
            return torch.sigmoid(a + self.noise_std * torch.randn_like(a))
        if self.method == "ste":
            hard = (a > 0).to(a.dtype)
        else:  # bernoulli
            hard = torch.bernoulli(p.detach())
        return p + (hard - p).detach()  # forward: hard bits; backward: d/da sigmoid(a)


def _mlp(sizes: list[int], last_activation: nn.Module | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if last_activation is not None:
        layers.append(last_activation)
    return nn.Sequential(*layers)


class Sigmoid32(nn.Module):
    """The decoder's output sigmoid, computed in float32 whatever its input's dtype: under a GPU's
    bf16 autocast a bf16 sigmoid rounds every output above ~0.998 to 1.0, where the loss's clamp
    passes no gradient (a confidently wrong pixel would stop learning). On float32 inputs (the CPU)
    it is nn.Sigmoid; it has no weights, so saved models load either way."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x.float())


class Autoencoder(nn.Module):
    """x: (n, *input_shape) float -> (x_hat of the same shape, a: (n, bits), h: (n, bits))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = int(np.prod(cfg.input_shape))
        out_act = Sigmoid32() if cfg.output == "sigmoid" else None
        if cfg.conv:
            self.encoder, self.decoder = _conv_pair(cfg, out_act)
        else:
            self.encoder = nn.Sequential(nn.Flatten(), _mlp([d, *cfg.hidden, cfg.bits], None))
            self.decoder = nn.Sequential(
                _mlp([cfg.bits, *reversed(cfg.hidden), d], out_act), nn.Unflatten(1, tuple(cfg.input_shape))
            )
        self.bottleneck = Bottleneck(cfg.bottleneck, cfg.noise_std)

    def forward(self, x: torch.Tensor):
        a = self.encoder(x)
        h = self.bottleneck(a)
        return self.decoder(h), a, h

    @torch.no_grad()
    def activations(self, x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
        """Pre-binarization activations a: (n, bits) float32 on the CPU (eval mode, batched)."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out = [self.encoder(x[i : i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)]
        self.train(was)
        return torch.cat(out) if out else torch.zeros(0, self.cfg.bits)


def _conv_pair(cfg: ModelConfig, out_act):
    """A small conv encoder (two stride-2 convs) and its transposed mirror, for H, W divisible by 4."""
    c, h, w = cfg.input_shape
    if h % 4 or w % 4:
        raise ValueError(f"the convolutional model needs height and width divisible by 4, got {h}x{w}")
    flat = 64 * (h // 4) * (w // 4)
    encoder = nn.Sequential(
        nn.Conv2d(c, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(flat, 256),
        nn.ReLU(),
        nn.Linear(256, cfg.bits),
    )
    decoder = [
        nn.Linear(cfg.bits, 256),
        nn.ReLU(),
        nn.Linear(256, flat),
        nn.ReLU(),
        nn.Unflatten(1, (64, h // 4, w // 4)),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(32, c, 4, stride=2, padding=1),
    ]
    if out_act is not None:
        decoder.append(out_act)
    return encoder, nn.Sequential(*decoder)


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
