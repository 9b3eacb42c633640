"""Variational bottlenecks (the lecture's variational autoencoder, as document hashing uses it):
the encoder gives a distribution over codes, training samples it and adds the KL divergence to a
prior, and encoding takes its most likely code, so that codes are deterministic at encode time.

  gaussian  VDSH (Chaidaroon & Fang, SIGIR 2017): a: (n, 2 bits) the mean and log-variance of a
            Gaussian per bit; the decoder reads sigmoid(mean + sigma * eps), the loss adds
            KL(N(mean, sigma^2) || N(0, 1)); the code is [mean > 0] (code_rules.MeanCode).
  nash      NASH (Shen et al., ACL 2018): a: (n, bits) the logits of a Bernoulli per bit; the
            decoder reads a sample, with the straight-through gradient to the probability, and
            the loss adds KL(Bernoulli(p) || Bernoulli(1/2)); the code is [a > 0].

Each class's kl_weight scales its prior term. The documents' reconstruction is the
log-likelihood of a word drawn from the document (~8 nats, not VDSH's sum over its ~100 words,
and the same at every code length). NASH's term is summed over the bits: at weight 1 the prior won
and every code collapsed (20 Newsgroups, 32 bits: P@100 0.086); at 0.01 a bit it trains. The
Gaussian's is averaged over the bits, so that the prior weighs as much against the reconstruction
at 128 bits as at 16: weight 0.48, i.e. 0.03 a bit at 16 bits, 0.0075 at 64. Measured a bit on 20
Newsgroups (P@100, benchmarks/README.md): 16 bits 0.594 at 0.01, 0.604 at 0.03, 0.137 at 0.1 (the
prior won); 32 bits at 0.03 held-out mAP 0.36 after 1,100 steps (stopped there; the full run at
0.01 ended at 0.646 P@100); 64 bits 0.654 at 0.01, 0.656 at 0.005. Each is one seed's run; at 16
bits a second seed of the default scored 0.564, so these gains are within the seeds' spread.
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
