"""Bottlenecks: how the encoder's outputs a become the code the decoder reads.

The contract (class Bottleneck), which the autoencoder, its loss and its hasher rely on alone:
  width(bits)     encoder outputs the bottleneck takes for a code of `bits` bits (bits for the
                  ones here; a Gaussian variational bottleneck's mean and log-variance: 2 * bits);
  forward(a)      (h, extra): while training, h: (n, bits) what the decoder reads (binary or nearly
                  so) and extra a scalar tensor the loss adds (0 here; a KL term for a variational
                  bottleneck); in eval mode, h is the code itself as 0.0/1.0;
  logits(a)       (n, bits): the deterministic activations whose sign is the code (a itself here);
  code(a)         (n, bits) bool: the code, [logits(a) > 0], the same for every bottleneck;
  code_rule       the torch-free class (code_rules.py) whose width, logits and code these are, so
                  that a model file is read without torch; None: only torch computes them. A
                  subclass that redefines width, logits or code without declaring its own rule
                  gets None (read by torch: correct, only slower).
A bottleneck is one class here (or in a module of its own) and one line in registry.BOTTLENECKS.

The ones here:
  noise      sigmoid(a + N(0, noise_std^2)) while training: the noise forces the units to saturate
             so that thresholding at 0.5 loses little (Salakhutdinov & Hinton 2009);
  ste        hard threshold [a > 0] forward, the gradient of sigmoid(a) backward (straight-through);
  bernoulli  a sample of Bernoulli(sigmoid(a)) forward, straight-through gradient to the probability;
  real       a continuous bottleneck (a itself), for the classic AE-vs-PCA comparison; its codes
             threshold a at 0.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from .code_rules import SignCode


class Bottleneck(nn.Module, SignCode):
    """a: (n, width(bits)) encoder outputs -> h: (n, bits). Subclasses implement relax(a), the
    training-time forward; the rest has defaults that fit a bottleneck of one output a bit
    (width, logits and code: SignCode's)."""

    binary = True  # False: continuous h (its width need not be a multiple of 8; codes are padded)
    code_rule: ClassVar[type | None] = SignCode

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # a redefined code with no rule declared beside it: numpy would compute the inherited rule's
        # codes, not this class's
        own = vars(cls)
        if "code_rule" not in own and any(name in own for name in ("width", "logits", "code")):
            cls.code_rule = None

    @classmethod
    def from_config(cls, cfg) -> Bottleneck:
        """The bottleneck a ModelConfig describes (one that reads its own options overrides this)."""
        return cls()

    def relax(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: (h, extra loss), h differentiable in a."""
        raise NotImplementedError

    def forward(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            return self.relax(a)
        return self.code(a).to(a.dtype), no_loss(a)


def no_loss(a: torch.Tensor) -> torch.Tensor:
    """The extra loss of a bottleneck that adds none: a 0 of a's dtype and device, outside the graph."""
    return a.new_zeros(())


def straight_through(p: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
    """hard bits forward, the gradient of the probability p backward."""
    return p + (hard - p).detach()


class Noise(Bottleneck):
    def __init__(self, noise_std: float = 4.0):
        super().__init__()
        self.noise_std = noise_std

    @classmethod
    def from_config(cls, cfg) -> Noise:
        return cls(cfg.noise_std)

    def relax(self, a):
        return torch.sigmoid(a + self.noise_std * torch.randn_like(a)), no_loss(a)


class StraightThrough(Bottleneck):
    def relax(self, a):
        return straight_through(torch.sigmoid(a), (a > 0).to(a.dtype)), no_loss(a)


class Bernoulli(Bottleneck):
    def relax(self, a):
        p = torch.sigmoid(a)
        return straight_through(p, torch.bernoulli(p.detach())), no_loss(a)


class Real(Bottleneck):
    """a itself, training or not: the decoder reads continuous values; only the code is binary."""

    binary = False

    def forward(self, a):
        return a, no_loss(a)
