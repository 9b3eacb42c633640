"""Validation and model selection: a seeded random sample of the data is held out (the training
loop never sees it); every validation round its items are encoded and ranked against a slice of the
training items, and the round's figure picks the weights that are kept (KeepBest).

Model selection acts only on a figure it can trust; the criterion used is recorded
(`Validation.criterion`, and the model file's header):
  labels      mAP with same-label relevance: the held-out queries hold at least 2 classes and
              nearly all of them have a class-mate in the validation database;
  neighbours  mAP with each query's nearest neighbours in input space (PCA-50 for wider inputs) as
              its relevant items: data without labels, or labels the split cannot be trusted on;
  none        too few held-out items for any figure to mean something: the full schedule runs and
              the last weights are kept.
Nor does early stopping act on rounds whose codes leave a bit (nearly) constant (see KeepBest).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..codes import pack, unpack
from ..metrics import UNBALANCED, euclidean_neighbours, evaluate, label_relevance, neighbour_relevance
from .config import TrainConfig
from .graph import projection
from .model import Autoencoder

MIN_QUERIES = 50  # fewer held-out queries give a figure noisier than MIN_DELTA: not trusted
MIN_DATABASE = 100
MIN_COVERED = 0.9  # share of held-out queries that must have a class-mate in the validation database
NEIGHBOURS = 50  # relevant items of an unlabelled query: its 50 nearest (at most a tenth of the database)


@dataclass
class Validation:
    """The held-out check of one training run: which rows are held out (the queries), which
    training rows they are ranked against (the first n_db of train_rows) and by which criterion
    (see the module docstring). score() measures any hasher's codes the same way, so the codes of
    another method, fitted on the same train_rows, compare fairly."""

    criterion: str  # "labels", "neighbours" or "none"
    reason: str  # why this criterion, in words
    train_rows: np.ndarray  # rows of the data the model trains on, in a random order
    val_rows: np.ndarray  # rows held out
    n_db: int
    relevance: Callable | None = None  # relevance(query rows) -> (len(rows), n_db) bool; None: no figure

    def score(self, codes_q: np.ndarray, codes_db: np.ndarray) -> dict:
        """The criterion's mAP (as "score", and as "map" or "neighbour_map"), precision within
        radius 2 and the share of empty radius-2 balls; {} when the criterion is "none"."""
        if self.relevance is None:
            return {}
        rep = evaluate(codes_q, codes_db, self.relevance, k=min(100, len(codes_db)), radius=2)
        return {
            "criterion": self.criterion,
            "score": rep.map_all,
            "map" if self.criterion == "labels" else "neighbour_map": rep.map_all,
            "precision_at_radius2": rep.precision_at_radius,
            "empty": rep.empty_ball_fraction,
        }


def make_validation(x: torch.Tensor, labels: torch.Tensor | None, cfg: TrainConfig) -> Validation:
    """Hold out a seeded random sample of min(val_items, n/5) rows of x (so class-sorted data
    gives a validation split of every class), and choose the criterion the split can support."""
    train_rows, val_rows = held_out(len(x), cfg)
    return validation_of(x, labels, cfg, train_rows, val_rows)


def held_out(n: int, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows) of n items: a permutation seeded by cfg.seed, cut after
    min(val_items, n/5) held-out rows."""
    n_val = min(cfg.val_items, n // 5)
    perm = np.random.default_rng(cfg.seed).permutation(n)
    return perm[n_val:], perm[:n_val]


def validation_of(x, labels, cfg: TrainConfig, train_rows: np.ndarray, val_rows: np.ndarray) -> Validation:
    """The Validation of held-out rows val_rows ranked against the first val_database of
    train_rows, by the criterion they can support."""
    n_val, n_db = len(val_rows), min(cfg.val_database, len(train_rows))
    if n_val < MIN_QUERIES or n_db < MIN_DATABASE:
        why = (
            f"{n_val} held-out items ranked against {n_db} are too few to select weights by "
            f"(at least {MIN_QUERIES} and {MIN_DATABASE}): the full schedule runs and the last weights are kept"
        )
        return Validation("none", why, train_rows, val_rows, n_db)
    db_rows = train_rows[:n_db]
    y = None if labels is None else np.asarray(labels)
    criterion, why = choose_criterion(None if y is None else y[val_rows], None if y is None else y[db_rows])
    if criterion == "labels":
        relevance = label_relevance(y[val_rows], y[db_rows])
    else:
        ids = input_neighbours(x[val_rows], x[db_rows], max(1, min(NEIGHBOURS, n_db // 10)))
        relevance = neighbour_relevance(ids, n_db)
    return Validation(criterion, why, train_rows, val_rows, n_db, relevance)


def choose_criterion(query_labels: np.ndarray | None, db_labels: np.ndarray | None) -> tuple[str, str]:
    """("labels" or "neighbours", why): label mAP only where it can be trusted."""
    if query_labels is None:
        return "neighbours", "the data has no labels: a query's nearest input-space neighbours are its relevant items"
    classes = np.unique(query_labels)
    if len(classes) < 2:
        return "neighbours", f"the held-out queries hold {len(classes)} class: label mAP cannot rank models"
    covered = float(np.isin(query_labels, db_labels).mean())
    if covered < MIN_COVERED:
        return "neighbours", f"only {covered:.0%} of held-out queries have a class-mate in the validation database"
    return (
        "labels",
        f"{len(classes)} classes among {len(query_labels)} held-out queries, {covered:.0%} with class-mates",
    )


def input_neighbours(x_q: torch.Tensor, x_db: torch.Tensor, k: int) -> np.ndarray:
    """(nq, k) ids of each query's k nearest database items, in PCA-50 space (fitted on the
    database) for inputs of more than 50 values, else in input space."""
    q = np.asarray(x_q, dtype=np.float32).reshape(len(x_q), -1)  # tensors and arrays alike
    db = np.asarray(x_db, dtype=np.float32).reshape(len(x_db), -1)
    project = projection(db)
    return euclidean_neighbours(project(q), project(db), k)


@torch.no_grad()
def validate(model: Autoencoder, x_db: torch.Tensor, x_q: torch.Tensor, val: Validation) -> dict:
    """The validation figures of the model's codes (Validation.score) and the range of the share
    of database items each bit is on for."""
    codes_db = _codes(model, x_db)
    on = unpack(codes_db)[:, : model.cfg.bits].mean(0)
    out = {"bits_on_min": float(on.min()), "bits_on_max": float(on.max())}
    if val.relevance is not None:
        out.update(val.score(_codes(model, x_q), codes_db))
    return out


def _codes(model: Autoencoder, x) -> np.ndarray:
    """Packed codes; a real bottleneck of any width is padded with 0 bits (distances unchanged)."""
    bits = (model.activations(x) > 0).numpy()
    return pack(np.pad(bits, ((0, 0), (0, (-bits.shape[1]) % 8))))


MIN_DELTA = 0.002  # a smaller rise of validation mAP is noise, not progress
KEEP_WITHIN = 0.005  # weights within this of the best validation mAP are as good: keep the later ones
LOSS_DELTA = 0.01  # a round whose mean loss is 1% below the best so far is still learning


@dataclass
class KeepBest:
    """Model selection over the validation rounds: it keeps the weights with the best validation
    figure, and counts in `stale` the rounds in which neither that figure nor the training loss
    improved (training stops after `patience` of them). When the figure is flat (within KEEP_WITHIN
    of the best), later weights are kept: measured, codes keep sharpening (precision within radius 2
    rises) long after mAP stops moving.

    What early stopping does not act on: weights whose codes leave a bit (nearly) constant are
    neither kept nor counted against patience, and no round counts while the loss still falls.
    Measured on digits: codes with dead bits scored 0.34 at step 160, the figure fell to 0.22 while
    the bits came alive and the loss fell, then rose to 0.62 by step 1,200. Without a figure
    (criterion "none") the last weights are kept and training runs its full length."""

    best: dict = field(default_factory=dict)  # the kept weights' round metrics
    state: dict | None = None  # the kept weights (a CPU state dict); None: the last ones
    score: float = -math.inf  # the best figure so far
    loss: float = math.inf  # the lowest round loss so far
    stale: int = 0  # rounds since the figure or the loss last improved

    @classmethod
    def resumed(cls, history: list[dict], best: dict, state: dict | None, stale: int) -> KeepBest:
        """The selection of an interrupted run, from its checkpoint (best, figure and loss from its history)."""
        scores = [h["score"] for h in history if "score" in h]
        lowest = min((h["loss"] for h in history), default=math.inf)
        return cls(best, state, max(scores) if scores else -math.inf, lowest, stale)

    def update(self, model: Autoencoder, metrics: dict) -> None:
        """Take a round's metrics (validate's, with its "loss"); keep the model's weights if they are the best."""
        learning = metrics["loss"] < self.loss - LOSS_DELTA * abs(self.loss)
        self.loss = min(self.loss, metrics["loss"])
        if "score" not in metrics:
            self.best, self.state = metrics, None
            return
        if not UNBALANCED <= metrics["bits_on_min"] <= metrics["bits_on_max"] <= 1 - UNBALANCED:
            if self.state is None:
                self.best = metrics  # until weights with every bit in use come, the last are kept
            return
        improved = metrics["score"] > self.score + MIN_DELTA
        self.score = metrics["score"] if improved else self.score
        self.stale = 0 if improved or learning else self.stale + 1
        if metrics["score"] >= self.score - KEEP_WITHIN:
            self.best = metrics
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
