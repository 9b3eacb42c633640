"""Variational bottlenecks (the lecture's variational autoencoder, as document hashing uses it):
the encoder gives a distribution over codes, training samples it and adds the KL divergence to a
prior, and encoding takes its most likely code, so that codes are deterministic at encode time.

  gaussian  VDSH (Chaidaroon & Fang, SIGIR 2017): a: (n, 2 bits) the mean and log-variance of a
            Gaussian per bit; the decoder reads sigmoid(mean + sigma * eps), the loss adds
            KL(N(mean, sigma^2) || N(0, 1)); the code is [mean > 0] (code_rules.MeanCode).
  nash      NASH (Shen et al., ACL 2018): a: (n, bits) the logits of a Bernoulli per bit; the
            decoder reads a sample, with the straight-through gradient to the probability, and
            the loss adds KL(Bernoulli(p) || Bernoulli(1/2)); the code is [a > 0].

Each class's kl_weight scales its prior term against the documents' reconstruction, the
log-likelihood of one word drawn from the document (~8 nats, not VDSH's sum over its ~100 words,
and the same at every code length). NASH's term is summed over the bits: at weight 1 the prior won
and every code collapsed (20 Newsgroups, 32 bits: P@100 0.086); at 0.01 a bit it trains. The
Gaussian's is averaged over the bits, so that the prior weighs as much against the reconstruction
at 128 bits as at 16: weight 0.48, i.e. 0.03 a bit at 16 bits, 0.0075 at 64 (at 0.1 a bit the
prior won again). What each weight scored, and the seeds' spread, is in benchmarks/README.md ("The
prior weighed by code length" and "Ensembles, and the code's variance").
"""

from __future__ import annotations

import math

import torch

from .bottlenecks import Bottleneck, straight_through
from .code_rules import MeanCode


class Gaussian(Bottleneck, MeanCode):
    code_rule = MeanCode
    kl_weight = 0.48  # the whole code's: the KL is averaged over the bits

    def relax(self, a):
        mean, log_var = a.chunk(2, dim=1)
        log_var = log_var.clamp(-10.0, 10.0)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        kl = 0.5 * (mean**2 + log_var.exp() - 1.0 - log_var).mean()
        return torch.sigmoid(z), self.kl_weight * kl


class BernoulliPrior(Bottleneck):
    kl_weight = 0.01

    def relax(self, a):
        p = torch.sigmoid(a)
        h = straight_through(p, torch.bernoulli(p.detach()))
        q = p.clamp(1e-6, 1 - 1e-6)
        kl = (q * torch.log(q) + (1 - q) * torch.log(1 - q) + math.log(2.0)).sum(1).mean()
        return h, self.kl_weight * kl
