"""The project's retrieval protocol, shared by tests, benchmarks and `semhash bench quality`.

MNIST protocol: database = the 60,000 training images (also the training set of every hasher),
queries = 1,000 test images (a seeded random sample), relevance = same label. Other labelled data
sets follow the same shape (train split = database, a seeded sample of `queries` items of the test
split = queries; 20 Newsgroups: 11,293 training documents, 1,000 of the 7,528 test ones). Data without a
test split (an image folder, a feature file) gives up a seeded random sample of `queries` items as
the queries and keeps the rest as the database: its first items would be one class of a
class-sorted folder, and each would find itself in the database at distance 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import inputs
from .codes import unpack
from .data import load_dataset
from .dataset import Dataset
from .errors import DataError
from .methods import make_hasher
from .metrics import evaluate, label_relevance


@dataclass
class QualityConfig:
    dataset: str = "mnist"
    bits: tuple[int, ...] = (16, 32, 64)
    methods: tuple[str, ...] = ("ae", "itq", "pcah", "lsh")
    queries: int = 1000
    k: int = 1000
    radius: int = 2
    seed: int = 0
    data_root: str | None = None
    database_limit: int | None = None  # a slice of the database, for quick runs
    ae_options: dict = field(default_factory=dict)  # TrainConfig fields for method "ae"


@dataclass
class QualityRow:
    method: str
    bits: int
    fit_s: float
    encode_s: float
    eval_s: float
    report: dict = field(repr=False)
    bits_on: tuple[float, float] = (0.0, 0.0)  # least and most used bit: fraction of the database with it on
    training: dict = field(default_factory=dict)


def protocol_data(cfg: QualityConfig) -> tuple[Dataset, Dataset]:
    """(database, queries) of cfg.dataset as the module docstring says, as the models' inputs: where
    the input kind has a featurizer (texts: TF-IDF), it is fitted on the database and every method
    of the run fits on the same features."""
    db, q = _split(cfg)
    db = inputs.featurized(db)
    return db, (q if db.featurizer is None else inputs.get(q.kind).featurize(q, db.featurizer))


def _split(cfg: QualityConfig) -> tuple[Dataset, Dataset]:
    db = load_dataset(cfg.dataset, "train", root=cfg.data_root)
    if db.labels is None:
        raise DataError(f"{cfg.dataset} has no labels; the quality protocol needs them")
    if db.split is not None:  # a named set: a seeded random sample of its own test split
        test = load_dataset(cfg.dataset, "test", root=cfg.data_root)
        if len(test) > cfg.queries:  # (20 Newsgroups' test split is sorted by class: its first items are two groups)
            test = test.take(np.sort(np.random.default_rng(cfg.seed).permutation(len(test))[: cfg.queries]))
        return db.subset(cfg.database_limit), test
    if len(db) < 2 * cfg.queries:
        raise DataError(f"{cfg.dataset} holds {len(db)} items: too few to hold out {cfg.queries} queries")
    rows = np.random.default_rng(cfg.seed).permutation(len(db))
    rest = np.sort(rows[cfg.queries :])[: cfg.database_limit]  # the database in the data's order
    return db.take(rest), db.take(rows[: cfg.queries])


def run_quality(cfg: QualityConfig, progress=None) -> list[QualityRow]:
    """Fit every method at every code length on the database, evaluate the queries against it."""
    db, q = protocol_data(cfg)
    relevance = label_relevance(q.labels, db.labels)
    rows = []
    for bits in cfg.bits:
        for method in cfg.methods:
            t0 = time.perf_counter()
            options = {"seed": cfg.seed}
            if method == "ae":  # its own options may name another seed: another training run, same protocol
                options |= {"progress": True, **cfg.ae_options}
            hasher = make_hasher(method, bits=bits, **options).fit(db)
            t1 = time.perf_counter()
            db_codes, q_codes = hasher.encode(db), hasher.encode(q)
            t2 = time.perf_counter()
            report = evaluate(q_codes, db_codes, relevance, k=cfg.k, radius=cfg.radius)
            t3 = time.perf_counter()
            on = unpack(db_codes).mean(axis=0)
            training = hasher.summary().get("training", {})
            rows.append(
                QualityRow(
                    method,
                    bits,
                    t1 - t0,
                    t2 - t1,
                    t3 - t2,
                    report.to_dict(),
                    (float(on.min()), float(on.max())),
                    training,
                )
            )
            if progress:
                progress(rows[-1])
    return rows
