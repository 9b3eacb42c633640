"""Train an autoencoder hasher. Config at the top, the loop in plain sight (nanoGPT's train.py habit).

    from semhash.hashing.train import TrainConfig, train
    result = train(TrainConfig(dataset="mnist", bits=32))   # -> TrainResult(model, history, ...)

The loss is reconstruction (BCE for [0, 1] images, MSE for real features) plus the optional
regularizers of hashing.models.Regularizers. Training is `steps` optimizer steps on random
mini-batches, whatever the data's size. A seeded random sample of the data is held out (the loop
never sees it); every `eval_every` steps (a validation round) the held-out items are encoded and
ranked against a slice of the training items. The round's figure picks the weights that are kept,
and training stops when neither it nor the training loss has improved for `patience` rounds.

Model selection acts only on a figure it can trust; the criterion used is recorded
(`Validation.criterion`, and the model file's header):
  labels      mAP with same-label relevance: the held-out queries hold at least 2 classes and
              nearly all of them have a class-mate in the validation database;
  neighbours  mAP with each query's nearest neighbours in input space (PCA-50 for wider inputs) as
              its relevant items: data without labels, or labels the split cannot be trusted on;
  none        too few held-out items for any figure to mean something: the full schedule runs and
              the last weights are kept.
Nor does early stopping act on rounds whose codes leave a bit (nearly) constant (see _keep_best).

In several processes (`nproc`, PyTorch DistributedDataParallel; hashing.distributed starts them)
the same loop runs in each. Every rank draws the same shuffled order and takes its share of each
batch (the batch is the same size as in one process, so a step means the same thing); DDP averages
the gradients, and the regularizers' batch statistics are taken over the whole batch (its codes
gathered from every rank, see _whole_batch), so a step follows the one-process loss. The k-NN
graph indexes the whole training set, which every rank holds: an item's neighbour is found
whichever rank has the item. Rank 0 alone validates, keeps the best weights and writes the
checkpoint; its stop decision is broadcast, and its result comes back to the calling process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import distributed
from .codes import pack, unpack
from .data import Dataset, load_dataset
from .errors import CheckpointMismatch, ParameterError
from .files import atomic_write
from .hasher import IMAGES
from .metrics import UNBALANCED, euclidean_neighbours, evaluate, label_relevance, neighbour_relevance
from .models import METHODS as BOTTLENECKS
from .models import Autoencoder, ModelConfig, Regularizers, affine_jitter, code_penalties, corrupt

# the regularizers of `semhash train`'s recipe (benchmarks/README.md: what each reached); the
# neighbour pool applies to data without views (knn_graph)
RECIPE = dict(neighbours=40.0, k_neighbours=50, neighbour_pool=2, affine=1.0, graph_views=4)


@dataclass
class TrainConfig:
    # data
    dataset: str = "mnist"
    data_root: str | None = None
    limit: int | None = None  # train on the first `limit` items only
    # model
    bits: int = 32
    bottleneck: str = "noise"
    hidden: tuple[int, ...] = (1000, 500, 250)
    conv: bool = False
    noise_std: float = 4.0
    # measured at 32 bits, 12 epochs each (benchmarks/README.md): k = 50 neighbours with images seen
    # under random affine views, 0.638 MNIST test mAP against 0.564 for the former k = 5 without views
    # (k = 50 alone 0.597); the graph searched among 4 views of each image as well, 0.711 (k = 100:
    # 0.691). Pairing a quarter of the items with a second view of themselves (0.659 without the
    # graph's views) is within the runs' noise and hurt short runs (digits, 1,200 steps: 0.39 vs 0.56).
    reg: Regularizers = field(default_factory=lambda: Regularizers(**RECIPE))
    # optimisation. Length in optimizer steps, whatever the data's size: MNIST's 58,000 training
    # items at batch 256 make 226 steps a pass, so 11,000 steps are ~48 passes; 2,000 items get the
    # same updates (early stopping ends them when done). Measured with the views (bench explore,
    # 32 bits): test mAP 0.71 after 31 passes, 0.72-0.73 after 40-50, flat to within 0.01 after
    # that; a cosine decay over 44 passes ended at 0.712, below the constant rate.
    steps: int = 11_000
    epochs: int | None = None  # when given, overrides steps: this many passes over the training items
    batch_size: int = 256
    lr: float = 1e-3
    lr_decay: str = "none"  # "cosine": the learning rate falls along a half cosine to 0 at the last step
    weight_decay: float = 0.0
    # validation and early stopping
    val_items: int = 2000  # a seeded random sample, held out of the training data
    val_database: int = 10_000  # training items the held-out queries are ranked against
    eval_every: int | None = None  # steps per validation round; default: a pass if `epochs`, else steps/30
    patience: int = 8  # rounds in which neither the figure nor the loss improved before training stops
    # system
    device: str = "auto"
    compile: bool = False
    seed: int = 0
    threads: int | None = None  # torch threads (per process; default: the cores shared out among them)
    # training processes, DistributedDataParallel: on the CPU they talk through gloo and share the
    # cores; on CUDA through NCCL, one GPU per rank. A checkpoint resumes with any count.
    nproc: int = 1
    checkpoint: str | None = None  # saved every validation round; resume=True continues from it
    resume: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["hidden"] = tuple(d["hidden"])
        d["reg"] = Regularizers(**d["reg"])
        return cls(**d)


@dataclass
class TrainResult:
    model: Autoencoder  # best weights, on the CPU, in eval mode
    history: list[dict]
    best: dict  # validation metrics of the kept weights
    device: str
    seconds: float
    samples_per_second: float
    steps: int = 0  # optimizer steps taken
    validation: Validation | None = None  # the held-out split, its criterion, and how codes are scored


MAX_AFFINE = 4.0  # views' strength: 4 turns images by up to 40 degrees, past which a 6 becomes a 9
MAX_GRAPH_VIEWS = 32  # each view adds the data's size to the graph's search
MAX_NEIGHBOUR_POOL = 8  # shared_neighbours' pool of p*k: its counts cost p^2 k^2 a row
VALIDATION_ROUNDS = 30  # rounds in a run whose length is given in steps
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
    n = len(x)
    n_val = min(cfg.val_items, n // 5)
    perm = np.random.default_rng(cfg.seed).permutation(n)
    train_rows, val_rows = perm[n_val:], perm[:n_val]
    n_db = min(cfg.val_database, len(train_rows))
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
    q = x_q.reshape(len(x_q), -1).float().numpy()
    db = x_db.reshape(len(x_db), -1).float().numpy()
    project = _projection(db)
    return euclidean_neighbours(project(q), project(db), k)


def schedule(cfg: TrainConfig, n_train: int) -> tuple[int, int, int]:
    """(items per batch, optimizer steps in all, steps per validation round). In a process group
    the batch is cut to a multiple of its size: equal shares."""
    world = distributed.world_size()
    size = min(cfg.batch_size, n_train) // world * world
    per_pass = n_train // size
    total = cfg.epochs * per_pass if cfg.epochs else cfg.steps
    every = cfg.eval_every or (per_pass if cfg.epochs else max(total // VALIDATION_ROUNDS, 1))
    return size, total, min(every, total)


def pick_device(name: str = "auto") -> torch.device:
    """The device to train on: "auto" takes cuda, then mps, then cpu; a named one must be here."""
    if name != "auto":
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ParameterError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ParameterError(f"device {name!r} asked for, but this machine has no CUDA GPU")
        if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ParameterError(f"device {name!r} asked for, but this machine has no MPS GPU")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_graph(reg: Regularizers) -> None:
    """The k-NN graph's parameters: whole numbers in their ranges (ParameterError if not)."""
    bounds = {
        "k_neighbours": ("neighbours per item", 1, None),
        "graph_views": ("views", 0, MAX_GRAPH_VIEWS),
        "neighbour_pool": ("neighbour pool", 1, MAX_NEIGHBOUR_POOL),
    }
    for name, (what, low, high) in bounds.items():
        value = getattr(reg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low or (high and value > high):
            span = f"in [{low}, {high}]" if high else f"at least {low}"
            raise ParameterError(f"the k-NN graph's {what} must be a whole number {span}, got {value!r}")


def validate_config(cfg: TrainConfig) -> None:
    from .codes import check_bits

    if cfg.bottleneck != "real" or cfg.bits % 8 == 0:
        check_bits(cfg.bits)  # binary codes are packed: multiples of 8
    elif cfg.bits < 1:
        raise ParameterError(f"bottleneck width must be positive, got {cfg.bits}")
    for name in ("steps", "epochs", "batch_size", "eval_every", "patience"):
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            raise ParameterError(f"{name} must be positive, got {value}")
    if not 0 < cfg.lr < 10:
        raise ParameterError(f"learning rate must be in (0, 10), got {cfg.lr}")
    if not 0 <= cfg.reg.mask_prob < 1:
        raise ParameterError(f"mask probability must be in [0, 1), got {cfg.reg.mask_prob}")
    if cfg.lr_decay not in ("none", "cosine"):
        raise ParameterError(f"unknown learning-rate decay {cfg.lr_decay!r}: use none or cosine")
    if not 0 <= cfg.reg.affine <= MAX_AFFINE:
        raise ParameterError(f"the views' strength must be in [0, {MAX_AFFINE:g}], got {cfg.reg.affine}")
    _check_graph(cfg.reg)
    if not 0 <= cfg.reg.self_pairs <= 1:
        raise ParameterError(f"the share of self pairs must be in [0, 1], got {cfg.reg.self_pairs}")
    if cfg.bottleneck not in BOTTLENECKS:
        raise ParameterError(f"unknown bottleneck {cfg.bottleneck!r}: use one of {', '.join(BOTTLENECKS)}")
    if cfg.resume and not cfg.checkpoint:
        raise ParameterError("resuming continues from a checkpoint: name the checkpoint file")
    device = pick_device(cfg.device)  # an unknown or absent device, before any work
    distributed.check(cfg.nproc, device, cfg.batch_size)


@dataclass
class _Run:
    """One training run's state: data on its device, model, optimizer and the best weights so far."""

    model: Autoencoder
    opt: torch.optim.Optimizer
    step_model: torch.nn.Module  # the model, or its torch.compile'd twin
    x_train: torch.Tensor  # the training rows, in the data's order
    x_val: torch.Tensor  # the held-out rows: the validation queries
    x_db: torch.Tensor  # the training rows they are ranked against: a random sample
    val: Validation
    x_dev: torch.Tensor  # x_train where the batches are gathered (GPU memory when it fits)
    nb_dev: torch.Tensor | None  # (n, k) neighbour ids of the k-NN graph, or None
    device: torch.device
    images: bool
    ckpt: Path | None
    history: list = field(default_factory=list)
    best: dict = field(default_factory=dict)
    best_state: dict | None = None
    best_score: float = -float("inf")
    best_loss: float = float("inf")
    step: int = 0
    stale: int = 0
    seen: int = 0


def train(cfg: TrainConfig, data: Dataset | None = None, progress: bool = True, on_epoch=None) -> TrainResult:
    """Train an autoencoder on `data` (default: cfg.dataset's train split); the loop is here.
    on_epoch(model, metrics), if given, runs after each validation round (for experiments).
    With cfg.nproc > 1 the loop runs in that many processes (see the module docstring). Called in
    every rank of a process group the caller made (a script under torchrun), it trains in that
    group; rank 0's result holds the kept weights, the other ranks' the last."""
    validate_config(cfg)
    if cfg.nproc > 1 and not distributed.initialized():
        return _spawn(cfg, data, progress, on_epoch)  # nproc processes come back here, in a process group
    rank, world = distributed.rank(), distributed.world_size()
    torch.manual_seed(cfg.seed + rank)  # the ranks' own noise; the batches' order is shared (_batches)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = _setup(cfg, data)
    size, total, every = schedule(cfg, len(run.x_train))
    batches = _batches(len(run.x_train), size, run.x_dev.device, seed=cfg.seed if world > 1 else None)
    bar = _progress(progress and rank == 0)
    task = bar.add_task("training", total=total, completed=run.step, info="")
    t_start = t_round = time.perf_counter()
    losses = []
    with bar:
        while run.step < total:
            _set_lr(run.opt, cfg, run.step, total)
            losses.append(_step(run, cfg, next(batches).chunk(world)[rank]))  # this rank's share
            run.step += 1
            speed = run.seen * world / (time.perf_counter() - t_start)
            bar.update(task, advance=1, info=f"loss {losses[-1]:.3f}  {speed:,.0f} samples/s")
            if run.step % every and run.step < total:
                continue
            loss, losses = distributed.mean(float(np.mean(losses))), []  # the round's loss, all shares
            if rank == 0:  # validation, the kept weights and the checkpoint: rank 0's work alone
                metrics = _validation_round(run, loss, t_round)
                if on_epoch is not None:
                    on_epoch(run.model, metrics)
                _keep_best(run, metrics)
                line = _round_line(metrics)
                bar.update(task, info=line)
                if progress:
                    bar.console.print(line)  # a line per round, also in logs where the bar cannot redraw
                if run.ckpt is not None:
                    _save_checkpoint(run, cfg)
            t_round = time.perf_counter()
            if distributed.decide(run.stale >= cfg.patience):  # rank 0's decision, in every rank
                break
    return _finish(run, time.perf_counter() - t_start)


def _batches(n: int, size: int, device: torch.device, seed: int | None = None) -> Iterator[torch.Tensor]:
    """Endless mini-batches of `size` row ids: each pass over the n rows in a fresh random order,
    its last partial batch dropped. Given a seed the order comes from a generator of its own, so
    that every rank of a process group draws the same batches (and splits each among them)."""
    generator = None if seed is None else torch.Generator(device).manual_seed(seed)
    while True:
        perm = torch.randperm(n, device=device, generator=generator)
        for i in range(0, n - size + 1, size):
            yield perm[i : i + size]


def _step(run: _Run, cfg: TrainConfig, idx: torch.Tensor) -> float:
    """One optimizer step on the training rows idx (in a process group: this rank's share of the
    batch); returns the mean loss per item (its reconstruction part: of this rank's share)."""
    run.model.train()
    xb = run.x_dev[idx]
    views = cfg.reg.affine > 0 and xb.ndim == 4  # images: each seen under its own affine transform
    if run.nb_dev is not None:  # each item travels with one of its k nearest neighbours (or itself)
        partners = _partners(run.nb_dev, idx, cfg.reg.self_pairs if views else 0.0)
        xb = torch.cat([xb, run.x_dev[partners.to(run.x_dev.device)]])
    xb = xb.to(run.device, non_blocking=True)
    paired = run.nb_dev is not None
    seen = affine_jitter(xb, cfg.reg.affine) if views else xb
    with _autocast(run.device):
        x_hat, _, h = run.step_model(corrupt(seen, cfg.reg))
    # the loss outside autocast, in float32: binary cross-entropy refuses autocast on CUDA
    # ("unsafe to autocast", hit on the first GPU run), and the regularizers' batch statistics want float32
    loss, _ = loss_fn(x_hat.float(), xb, _whole_batch(h.float(), paired), cfg, run.images, paired=paired)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    run.seen += len(xb)
    return float(loss.detach())


def _autocast(device: torch.device):
    """The model's forward pass in bfloat16 on a GPU, in float32 elsewhere (the full MNIST recipe on
    one H200: 84 s, 84,000-89,000 samples/s; benchmarks/README.md)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _set_lr(opt: torch.optim.Optimizer, cfg: TrainConfig, step: int, total: int) -> None:
    """The learning rate of this step: cfg.lr, or under cosine decay cfg.lr * (1 + cos(pi step/total)) / 2
    (a function of the step alone, so a resumed run continues the same schedule)."""
    if cfg.lr_decay == "cosine":
        for group in opt.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total))


def _partners(nb: torch.Tensor, idx: torch.Tensor, self_share: float) -> torch.Tensor:
    """Each item's pair partner: one of its k nearest neighbours (nb: (n, k)) at random, or, for a
    share self_share of them, the item itself (seen under another corruption)."""
    idx = idx.to(nb.device)
    partner = nb[idx, torch.randint(0, nb.shape[1], (len(idx),), device=nb.device)]
    if self_share > 0:
        partner = torch.where(torch.rand(len(idx), device=nb.device) < self_share, idx, partner)
    return partner


def _whole_batch(h: torch.Tensor, paired: bool) -> torch.Tensor:
    """The codes of the whole batch, every rank's share in rank order (h itself in one process),
    so that the regularizers' batch statistics (bit balance, decorrelation, the spectral term's
    unrelated pairs and bit means) are those of the batch one process would see; with pairs, the
    items come first and their neighbours second, as in each share. Reconstruction stays per share:
    DDP's mean of the shares' mean losses is the batch's."""
    if distributed.world_size() == 1:
        return h
    if paired:
        h = torch.cat(h.chunk(2), dim=1)  # an item's code beside its neighbour's: one gather for both
    whole = distributed.gather(h)
    return torch.cat(whole.chunk(2, dim=1)) if paired else whole


def _validation_round(run: _Run, loss: float, t_round: float) -> dict:
    """Validate the current weights; the round's metrics, also appended to the history."""
    metrics = validation(run.model, run.x_db, run.x_val, run.val)
    metrics.update(epoch=len(run.history), step=run.step, loss=loss, seconds=time.perf_counter() - t_round)
    run.history.append(metrics)
    return metrics


def _round_line(m: dict) -> str:
    figure = f"val {m['criterion']} mAP {m['score']:.3f}" if "score" in m else "no validation figure"
    return (
        f"step {m['step']}: loss {m['loss']:.3f}  {figure}  "
        f"bits on {m['bits_on_min']:.2f}-{m['bits_on_max']:.2f}  {m['seconds']:.1f} s"
    )


def _keep_best(run: _Run, metrics: dict) -> None:
    """Keep the weights with the best validation figure; training stops after `patience` rounds in
    which neither that figure nor the training loss improved. When the figure is flat (within
    KEEP_WITHIN of the best), later weights are kept: measured, codes keep sharpening (precision
    within radius 2 rises) long after mAP stops moving.

    What early stopping does not act on: weights whose codes leave a bit (nearly) constant are
    neither kept nor counted against patience, and no round counts while the loss still falls.
    Measured on digits: codes with dead bits scored 0.34 at step 160, the figure fell to 0.22 while
    the bits came alive and the loss fell, then rose to 0.62 by step 1,200. Without a figure
    (criterion "none") the last weights are kept and training runs its full length."""
    learning = metrics["loss"] < run.best_loss - LOSS_DELTA * abs(run.best_loss)
    run.best_loss = min(run.best_loss, metrics["loss"])
    if "score" not in metrics:
        run.best, run.best_state = metrics, None
        return
    if not UNBALANCED <= metrics["bits_on_min"] <= metrics["bits_on_max"] <= 1 - UNBALANCED:
        if run.best_state is None:
            run.best = metrics  # until weights with every bit in use come, the last are kept
        return
    improved = metrics["score"] > run.best_score + MIN_DELTA
    run.best_score = metrics["score"] if improved else run.best_score
    run.stale = 0 if improved or learning else run.stale + 1
    if metrics["score"] >= run.best_score - KEEP_WITHIN:
        run.best = metrics
        run.best_state = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}


def _finish(run: _Run, seconds: float) -> TrainResult:
    """The kept weights on the CPU, in eval mode, and what the run measured."""
    model = run.model.cpu()
    if run.best_state is not None:
        model.load_state_dict(run.best_state)
    model.eval()
    world = distributed.world_size()
    speed = run.seen * world / max(seconds, 1e-9)  # every rank's items
    device = str(run.device) if world == 1 else f"{run.device.type} x{world}"
    return TrainResult(model, run.history, run.best, device, seconds, speed, run.step, run.val)


def _spawn(cfg: TrainConfig, data: Dataset | None, progress: bool, on_epoch) -> TrainResult:
    """Train in cfg.nproc processes on this process's data; the TrainResult from what rank 0 sends
    back (its kept weights and what it measured). The data travels as a file the ranks map (no
    copy through shared memory, which containers keep small); the split is seeded, so this process
    makes it again, as each rank did."""
    import tempfile

    if on_epoch is not None:
        raise ParameterError("a callback after each validation round needs training in one process")
    data = data if data is not None else load_dataset(cfg.dataset, "train", root=cfg.data_root)
    data = data.subset(cfg.limit)
    if cfg.resume and Path(cfg.checkpoint).is_file():
        _load_checkpoint(Path(cfg.checkpoint), cfg, "cpu")  # a mismatch is refused before any process starts
    with tempfile.TemporaryDirectory(prefix="semhash-train-") as tmp:
        path = Path(tmp) / "data.pt"
        torch.save(_compact(data), path)
        sent = distributed.launch(
            _rank_main, cfg.nproc, pick_device(cfg.device), (cfg, str(path), progress), cfg.threads
        )
    model = Autoencoder(ModelConfig.from_dict(sent.pop("architecture")))
    model.load_state_dict(sent.pop("weights"))
    model.eval()
    return TrainResult(model, **sent, validation=make_validation(data.x.float(), data.labels, cfg))


def _compact(data: Dataset) -> Dataset:
    """data whose tensors hold only their own items (a subset is a view that would save them all)."""
    from dataclasses import replace

    own = lambda t: t if t is None or t.untyped_storage().nbytes() == t.nbytes else t.clone()  # noqa: E731
    return replace(data, x=own(data.x), labels=own(data.labels))


def _rank_main(cfg: TrainConfig, data_path: str, progress: bool) -> dict | None:
    """One process of _spawn, in its process group: the training loop; rank 0 returns its result
    as plain data (the validation split holds functions, which do not travel)."""
    data = torch.load(data_path, mmap=True, weights_only=False)
    result = train(cfg, data, progress=progress and distributed.rank() == 0)
    if distributed.rank() != 0:
        return None
    sent = {k: getattr(result, k) for k in ("history", "best", "device", "seconds", "samples_per_second", "steps")}
    return {"architecture": result.model.cfg.to_dict(), "weights": result.model.state_dict(), **sent}


def _setup(cfg: TrainConfig, data: Dataset | None) -> _Run:
    """The split (a seeded random sample held out; the loop never sees it), the model, its
    optimizer, the k-NN graph, and the state of an interrupted run when resuming."""
    device = distributed.device_of_rank(pick_device(cfg.device))
    data = data if data is not None else load_dataset(cfg.dataset, "train", root=cfg.data_root)
    data = data.subset(cfg.limit)
    x_all = data.x.float()
    val = make_validation(x_all, data.labels, cfg)
    if len(val.train_rows) < max(2, cfg.nproc):
        raise ParameterError(f"need at least {max(2, cfg.nproc)} training items, got {len(val.train_rows)}")
    x_train = x_all[torch.from_numpy(np.sort(val.train_rows))]  # in the data's order: batches are random
    x_val, x_db = x_all[torch.from_numpy(val.val_rows)], x_all[torch.from_numpy(val.train_rows[: val.n_db])]
    images = data.kind == IMAGES
    model = Autoencoder(_model_config(cfg, data.shape, images)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step_model = _step_model(model, device, cfg.compile)
    # the same graph in every rank (seeded views): rank 0 builds it on all the cores, the others receive it
    graph = partial(knn_graph, x_train, cfg.reg, cfg.seed)
    neighbours = distributed.from_rank0(graph) if cfg.reg.neighbours > 0 else None
    # On a GPU the whole training set lives in device memory: batches are index gathers, no copies.
    resident = device.type == "cuda" and _fits_on_gpu(x_train, device)
    x_dev = x_train.to(device) if resident else x_train
    nb_dev = neighbours.to(device) if (neighbours is not None and resident) else neighbours
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    run = _Run(model, opt, step_model, x_train, x_val, x_db, val, x_dev, nb_dev, device, images, ckpt)
    if ckpt is not None and cfg.resume and ckpt.is_file():
        _resume(run, cfg)
    return run


def _step_model(model: Autoencoder, device: torch.device, compile_: bool) -> torch.nn.Module:
    """What the steps call: the model, in a process group wrapped in DDP (which averages the
    gradients over the ranks), torch.compile'd when asked."""
    if distributed.world_size() > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(model) if compile_ else model


def _model_config(cfg: TrainConfig, shape: tuple[int, ...], images: bool) -> ModelConfig:
    return ModelConfig(
        input_shape=tuple(shape),
        bits=cfg.bits,
        bottleneck=cfg.bottleneck,
        hidden=cfg.hidden,
        conv=cfg.conv,
        noise_std=cfg.noise_std,
        output="sigmoid" if images else "linear",
    )


def _resume(run: _Run, cfg: TrainConfig) -> None:
    """Continue from the checkpoint: weights, optimizer, history, best weights and step count."""
    state = _load_checkpoint(run.ckpt, cfg, run.device)
    run.model.load_state_dict(state["model"])
    run.opt.load_state_dict(state["optimizer"])
    run.history, run.best, run.best_state = state["history"], state["best"], state["best_state"]
    run.step, run.stale = state["step"], state["stale"]
    scores = [h["score"] for h in run.history if "score" in h]
    run.best_score = max(scores) if scores else -float("inf")
    run.best_loss = min((h["loss"] for h in run.history), default=float("inf"))


def _load_checkpoint(path: Path, cfg: TrainConfig, device) -> dict:
    """The checkpoint at path, if this configuration wrote it (CheckpointMismatch if not)."""
    state = torch.load(path, map_location=device, weights_only=False)
    if _run_defining(state["config"]) != _run_defining(cfg.to_dict()):
        raise CheckpointMismatch(f"{path} was written by a different training configuration; start afresh")
    return state


def _run_defining(config: dict) -> dict:
    """A TrainConfig's fields that define the run: not whether it resumes, nor in how many processes
    (the steps, batches and weights mean the same in any count)."""
    config = TrainConfig.from_dict(config).to_dict()  # fields added since it was written: their defaults
    return {k: v for k, v in config.items() if k not in ("resume", "nproc")}


def loss_fn(x_hat, x, h, cfg: TrainConfig, images: bool, paired: bool):
    """Reconstruction per item (summed over its values) plus the regularizers; (loss, parts)."""
    flat_hat, flat = x_hat.reshape(len(x), -1), x.reshape(len(x), -1)
    if images:
        rec = F.binary_cross_entropy(flat_hat.clamp(1e-6, 1 - 1e-6), flat, reduction="sum") / len(x)
    else:
        rec = F.mse_loss(flat_hat, flat, reduction="sum") / len(x)
    parts = {"reconstruction": rec, **code_penalties(h, cfg.reg)}
    if paired and cfg.reg.neighbours > 0:
        pair_loss = spectral_pair_loss if cfg.reg.temperature <= 0 else partial(nce_pair_loss, t=cfg.reg.temperature)
        parts["neighbours"] = cfg.reg.neighbours * pair_loss(h)
    return sum(parts.values()), parts


MIN_DELTA = 0.002  # a smaller rise of validation mAP is noise, not progress
KEEP_WITHIN = 0.005  # weights within this of the best validation mAP are as good: keep the later ones
LOSS_DELTA = 0.01  # a round whose mean loss is 1% below the best so far is still learning
NEGATIVE_WEIGHT = 4.0  # measured: 4 keeps bits balanced where 1 let them collapse to constants
BALANCE_WEIGHT = 4.0


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


def knn_graph(x: torch.Tensor, reg: Regularizers, seed: int = 0) -> torch.Tensor:
    """(n, k) int64: each training item's k neighbours, found by exact L2 (FAISS) in PCA-50 space
    or the input space. Images trained under views (reg.affine > 0) are searched among
    reg.graph_views seeded random views of every item as well: an item's distance to another is to
    the nearest of its views. Other data: its k nearest, or with reg.neighbour_pool = p > 1, the k
    of its p*k nearest that share most of their own p*k nearest with it (shared_neighbours).

    Measured on MNIST at 32 bits (test mAP after 12 epochs, bench explore): the plain k = 50 graph
    0.638, shared neighbours of a pool of 100 0.676, searched among 4 views 0.711, and both 0.667:
    a graph of views is not re-ranked."""
    import faiss

    flat = x.reshape(len(x), -1).numpy().astype(np.float32)
    project = _projection(flat, reg.neighbour_space)
    n, views = len(flat), reg.graph_views if (reg.affine > 0 and x.ndim == 4) else 0
    items = project(flat)
    index = faiss.IndexFlatL2(items.shape[1])
    index.add(items)
    for view in _views(x, reg.affine, views, seed, project):
        index.add(view)  # row r of the index is a view of item r % n
    k = min(reg.k_neighbours, n - 1)
    pool = k if views else min(max(1, reg.neighbour_pool) * k, n - 1)
    found_rows = (views + 1) * pool + 1  # (views + 1) rows per distinct item, and the item's own
    step = max(1, GRAPH_BYTES // (40 * found_rows))  # _first_distinct holds ~5 int64 copies
    ids = np.empty((n, pool), dtype=np.int64)
    for a in range(0, n, step):
        _, found = index.search(items[a : a + step], found_rows)
        ids[a : a + step] = _first_distinct(found % n, np.arange(a, a + len(found)), pool)
    return torch.from_numpy(ids if pool == k else shared_neighbours(ids, k))


GRAPH_BYTES = 256 << 20  # bound on the search results of the items searched at a time
VIEW_BYTES = 64 << 20  # images turned into views at a time


def _projection(flat: np.ndarray, space: str = "pca50") -> Callable[[np.ndarray], np.ndarray]:
    """Where neighbours are searched: PCA-50 of flat (n, d) for space "pca50", d > 50 and n > 50,
    else the input space; (m, d) float32 -> (m, 50 or d)."""
    from .pca import principal_directions

    if space != "pca50" or flat.shape[1] <= 50 or len(flat) <= 50:
        return lambda a: a  # (50 items or fewer span at most 49 dimensions: PCA-50 would keep them all)
    mean, pcs = principal_directions(flat, 50)
    return lambda a: np.ascontiguousarray((a - mean) @ pcs)


def _views(x: torch.Tensor, strength: float, count: int, seed: int, project) -> Iterator[np.ndarray]:
    """count projected random views of every image of x (n, C, H, W), each (n, dims), drawn from a
    generator seeded with seed (every rank of a process group draws the same)."""
    generator = torch.Generator().manual_seed(seed)
    rows = max(1, VIEW_BYTES // (4 * x[0].numel()))
    for _ in range(count):
        parts = [affine_jitter(x[a : a + rows].float(), strength, generator) for a in range(0, len(x), rows)]
        yield np.concatenate([project(p.reshape(len(p), -1).numpy()) for p in parts])


def _first_distinct(owners: np.ndarray, own: np.ndarray, m: int) -> np.ndarray:
    """owners: (q, r) the items of each query's r nearest rows, nearest first; own: (q,) the query's
    own item -> (q, m): the first m distinct items of each row other than its own (each item has
    views + 1 rows, so r = (views + 1) * m + 1 rows hold at least m others)."""
    order = np.argsort(owners, axis=1, kind="stable")
    ranked = np.take_along_axis(owners, order, 1)
    first = np.ones_like(ranked, dtype=bool)
    first[:, 1:] = ranked[:, 1:] != ranked[:, :-1]  # the nearest row of each item
    keep = np.empty_like(first)
    np.put_along_axis(keep, order, first, 1)
    keep &= owners != own[:, None]
    taken = np.argsort(~keep, axis=1, kind="stable")[:, :m]  # kept rows, nearest first
    return np.take_along_axis(owners, taken, 1)


# measured (MNIST's 60,000 training images, PCA-50, 50 neighbours of a pool of 100): the share of
# the graph's edges within a class 0.922 -> 0.934 (4 views, no pool: 0.934 too, and 0.912 at k = 100)
POOL_MEMORY = 64 << 20  # bytes of gathered candidate lists and membership rows per chunk


def shared_neighbours(ids: np.ndarray, k: int) -> np.ndarray:
    """ids: (n, p) each item's p nearest items, nearest first -> (n, k): the k of them that share
    the most of their own p nearest with it, nearer first among equals (Jarvis & Patrick's shared
    nearest neighbours: two items that agree about their neighbourhood are rarely in different
    classes, where a near pair across a class boundary often is not)."""
    n, p = ids.shape
    cand = torch.from_numpy(ids)
    shared = torch.empty(n, p, dtype=torch.int32)
    rows = max(1, min(POOL_MEMORY // (8 * p * p), POOL_MEMORY // max(n, 1)))
    for a in range(0, n, rows):
        mine = cand[a : a + rows]
        member = torch.zeros(len(mine), n, dtype=torch.bool).scatter_(1, mine, True)  # row i: i's pool
        theirs = cand[mine].reshape(len(mine), p * p)  # the pools of i's candidates
        shared[a : a + rows] = torch.gather(member, 1, theirs).reshape(len(mine), p, p).sum(2)
    order = torch.sort(shared, dim=1, descending=True, stable=True).indices[:, :k]
    return torch.gather(cand, 1, order).numpy()


@torch.no_grad()
def validation(model: Autoencoder, x_db: torch.Tensor, x_q: torch.Tensor, val: Validation) -> dict:
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


def _save_checkpoint(run: _Run, cfg: TrainConfig) -> None:
    state = {
        "model": run.model.state_dict(),
        "optimizer": run.opt.state_dict(),
        "step": run.step,
        "stale": run.stale,
        "history": run.history,
        "best": run.best,
        "best_state": run.best_state,
        "config": cfg.to_dict(),
    }
    atomic_write(run.ckpt, lambda tmp: torch.save(state, tmp))


def _fits_on_gpu(x: torch.Tensor, device: torch.device) -> bool:
    """Keep the training set in GPU memory when it takes at most half of what is free."""
    free, _ = torch.cuda.mem_get_info(device)
    return x.element_size() * x.nelement() <= free // 2


def _progress(enabled: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        disable=not enabled,
        transient=False,
    )
