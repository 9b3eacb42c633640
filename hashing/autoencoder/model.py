"""Autoencoders with a binary bottleneck (Salakhutdinov & Hinton's semantic hashing, and kin).

Encoder f: x -> a (the bottleneck's inputs, width(bits) of them); bottleneck: a -> h in [0, 1]
during training and exact bits {0, 1} when encoding (bottlenecks.py, chosen by name through
registry.py); decoder g: h -> x_hat. The code of x is the bottleneck's code(f(x)), [a > 0] for
every bottleneck of one output a bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .layout import mlp_sizes
from .registry import bottleneck_class


@dataclass
class ModelConfig:
    """Architecture. hidden: the MLP's hidden widths, mirrored in the decoder (Hinton &
    Salakhutdinov's 784-1000-500-250-bits by default); conv: a small convolutional encoder/decoder
    for images instead of the MLP; bottleneck: a name of registry.BOTTLENECKS."""

    input_shape: tuple[int, ...] = (1, 28, 28)
    bits: int = 32
    bottleneck: str = "noise"
    hidden: tuple[int, ...] = (1000, 500, 250)
    conv: bool = False
    noise_std: float = 4.0
    # "sigmoid" for [0, 1] images (BCE), "linear" for real features (MSE), "multinomial" for bags of
    # words (the decoder's outputs are logits over the vocabulary; losses.multinomial_loss)
    output: str = "sigmoid"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"], d["hidden"] = list(self.input_shape), list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d["input_shape"], d["hidden"] = tuple(d["input_shape"]), tuple(d["hidden"])
        return cls(**d)


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
    """x: (n, *input_shape) float -> (x_hat of the same shape, a: (n, width) the encoder's outputs,
    h: (n, bits) the bottleneck's, extra: the bottleneck's scalar term of the loss)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        kind = bottleneck_class(cfg.bottleneck)
        width = kind.width(cfg.bits)
        d = int(np.prod(cfg.input_shape))
        out_act = Sigmoid32() if cfg.output == "sigmoid" else None
        if cfg.conv:
            self.encoder, self.decoder = _conv_pair(cfg, width, out_act)
        else:
            encoder, decoder = mlp_sizes(d, cfg.hidden, cfg.bits, width, cfg.output)
            self.encoder = nn.Sequential(nn.Flatten(), _mlp(encoder, None))
            self.decoder = nn.Sequential(_mlp(decoder, out_act), nn.Unflatten(1, tuple(cfg.input_shape)))
        self.bottleneck = kind.from_config(cfg)

    def forward(self, x: torch.Tensor):
        a = self.encoder(x) if x.layout != torch.sparse_csr else self._sparse_encoder(x)
        h, extra = self.bottleneck(a)
        return self.decoder(h), a, h, extra

    def _sparse_encoder(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP encoder of x: (n, d) a sparse CSR batch (bags of words), its first layer a sparse
        product: on 20 Newsgroups' TF-IDF (~76 words a document of 10,000) a training step of that
        layer (10,000 -> 500, 1,024 documents, Adam's update included) takes 52 ms on 2 cores
        against 137-169 ms dense (benchmarks/README.md)."""
        mlp = self.encoder[1]
        first = mlp[0]
        return mlp[1:](torch.sparse.mm(x, first.weight.t()) + first.bias)

    @torch.no_grad()
    def activations(self, x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
        """The code's real-valued activations (the bottleneck's logits; the code is [> 0]):
        (n, bits) float32 on the CPU (eval mode, batched)."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out = [
            self.bottleneck.logits(self.encoder(x[i : i + batch].to(device))).float().cpu()
            for i in range(0, len(x), batch)
        ]
        self.train(was)
        return torch.cat(out) if out else torch.zeros(0, self.cfg.bits)


def _conv_pair(cfg: ModelConfig, width: int, out_act):
    """A small conv encoder (two stride-2 convs) of `width` outputs and its transposed mirror from
    cfg.bits, for H, W divisible by 4."""
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
        nn.Linear(256, width),
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
