"""Train an autoencoder hasher. Config at the top, the loop in plain sight (nanoGPT's train.py habit).

    from semhash.hashing.train import TrainConfig, train
    result = train(TrainConfig(dataset="mnist", bits=32))   # -> TrainResult(model, history, ...)

The loss is reconstruction (BCE for [0, 1] images, MSE for real features) plus the optional
regularizers of hashing.models.Regularizers. Each epoch a held-out split is encoded and its mAP
measured (queries from the held-out split against a slice of the training set); training stops
early when it has not improved for `patience` epochs, and the best weights are kept.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .codes import pack, unpack
from .data import Dataset, load_dataset
from .errors import CheckpointMismatch, ParameterError
from .files import atomic_write
from .hasher import IMAGES
from .metrics import evaluate, label_relevance
from .models import METHODS as BOTTLENECKS
from .models import Autoencoder, ModelConfig, Regularizers, code_penalties, corrupt


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
    reg: Regularizers = field(default_factory=lambda: Regularizers(neighbours=40.0, k_neighbours=5))
    # optimisation
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    # validation and early stopping
    val_items: int = 2000  # held out of the training data
    val_database: int = 10_000  # training items the held-out queries are ranked against
    patience: int = 8
    # system
    device: str = "auto"
    compile: bool = False
    seed: int = 0
    threads: int | None = None
    checkpoint: str | None = None  # saved every epoch; resume=True continues from it
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


def validate_config(cfg: TrainConfig) -> None:
    from .codes import check_bits

    if cfg.bottleneck != "real" or cfg.bits % 8 == 0:
        check_bits(cfg.bits)  # binary codes are packed: multiples of 8
    elif cfg.bits < 1:
        raise ParameterError(f"bottleneck width must be positive, got {cfg.bits}")
    for name in ("epochs", "batch_size"):
        if getattr(cfg, name) <= 0:
            raise ParameterError(f"{name} must be positive, got {getattr(cfg, name)}")
    if not 0 < cfg.lr < 10:
        raise ParameterError(f"learning rate must be in (0, 10), got {cfg.lr}")
    if not 0 <= cfg.reg.mask_prob < 1:
        raise ParameterError(f"mask probability must be in [0, 1), got {cfg.reg.mask_prob}")
    if cfg.bottleneck not in BOTTLENECKS:
        raise ParameterError(f"unknown bottleneck {cfg.bottleneck!r}: use one of {', '.join(BOTTLENECKS)}")
    if cfg.resume and not cfg.checkpoint:
        raise ParameterError("resuming continues from a checkpoint: name the checkpoint file")
    pick_device(cfg.device)  # an unknown or absent device, before any work


@dataclass
class _Run:
    """One training run's state: data on its device, model, optimizer and the best weights so far."""

    model: Autoencoder
    opt: torch.optim.Optimizer
    step_model: torch.nn.Module  # the model, or its torch.compile'd twin
    x_train: torch.Tensor
    x_val: torch.Tensor
    labels: torch.Tensor | None
    x_dev: torch.Tensor  # x_train where the batches are gathered (GPU memory when it fits)
    nb_dev: torch.Tensor | None  # (n, k) neighbour ids of the k-NN graph, or None
    device: torch.device
    images: bool
    ckpt: Path | None
    history: list = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"map": -1.0})
    best_state: dict | None = None
    best_map: float = -1.0
    start_epoch: int = 0
    stale: int = 0
    seen: int = 0


def train(cfg: TrainConfig, data: Dataset | None = None, progress: bool = True, on_epoch=None) -> TrainResult:
    """Train an autoencoder on `data` (default: cfg.dataset's train split); the loop is here.
    on_epoch(model, metrics), if given, runs after each epoch's validation (for experiments)."""
    validate_config(cfg)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = _setup(cfg, data)
    n = len(run.x_train)
    bar = _progress(progress)
    task = bar.add_task("training", total=cfg.epochs * n, completed=run.start_epoch * n, info="")
    t_start = time.perf_counter()
    with bar:
        for epoch in range(run.start_epoch, cfg.epochs):
            t_epoch = time.perf_counter()
            loss = _epoch(run, cfg, lambda items, info: bar.update(task, advance=items, info=info), t_start)
            metrics = validation(run.model, run.x_train, run.x_val, run.labels, n, cfg)
            metrics.update(epoch=epoch, loss=loss, seconds=time.perf_counter() - t_epoch)
            run.history.append(metrics)
            if on_epoch is not None:
                on_epoch(run.model, metrics)
            _keep_best(run, metrics)
            summary = (
                f"epoch {epoch}: loss {metrics['loss']:.3f}  val mAP {metrics['map']:.3f}  "
                f"bits on {metrics['bits_on_min']:.2f}-{metrics['bits_on_max']:.2f}  {metrics['seconds']:.1f} s"
            )
            bar.update(task, info=summary)
            if progress:
                bar.console.print(summary)  # a line per epoch, also in logs where the bar cannot redraw
            if run.ckpt is not None:
                _save_checkpoint(run.ckpt, run.model, run.opt, epoch, run.history, run.best, run.best_state, cfg)
            if run.stale >= cfg.patience:
                break
    seconds = time.perf_counter() - t_start
    model = run.model.cpu()
    if run.best_state is not None:
        model.load_state_dict(run.best_state)
    model.eval()
    return TrainResult(model, run.history, run.best, str(run.device), seconds, run.seen / max(seconds, 1e-9))


def _epoch(run: _Run, cfg: TrainConfig, advance, t_start: float) -> float:
    """One pass over the training items in a random order; returns the mean loss per item."""
    run.model.train()
    perm = torch.randperm(len(run.x_train), device=run.x_dev.device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if run.device.type == "cuda" else nullcontext()
    total = 0.0
    for i in range(0, len(perm), cfg.batch_size):
        idx = perm[i : i + cfg.batch_size]
        xb = run.x_dev[idx]
        if run.nb_dev is not None:  # each item travels with one of its k nearest neighbours
            nb = run.nb_dev
            pick = torch.randint(0, nb.shape[1], (len(idx),), device=nb.device)
            xb = torch.cat([xb, run.x_dev[nb[idx.to(nb.device), pick].to(run.x_dev.device)]])
        xb = xb.to(run.device, non_blocking=True)
        with autocast:
            x_hat, _, h = run.step_model(corrupt(xb, cfg.reg))
            loss, _ = loss_fn(x_hat.float(), xb, h.float(), cfg, run.images, paired=run.nb_dev is not None)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        run.opt.step()
        total += float(loss.detach()) * len(idx)
        run.seen += len(xb)
        speed = run.seen / (time.perf_counter() - t_start)
        advance(len(idx), f"loss {float(loss.detach()):.3f}  {speed:,.0f} samples/s")
    return total / len(run.x_train)


def _keep_best(run: _Run, metrics: dict) -> None:
    """Early stopping on validation mAP. When mAP is flat (within KEEP_WITHIN of the best), later
    weights are kept: measured, codes keep sharpening (precision within radius 2 rises) long after
    mAP stops moving."""
    improved = metrics["map"] > run.best_map + MIN_DELTA
    run.best_map, run.stale = (metrics["map"], 0) if improved else (run.best_map, run.stale + 1)
    if metrics["map"] >= run.best_map - KEEP_WITHIN:
        run.best = metrics
        run.best_state = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}


def _setup(cfg: TrainConfig, data: Dataset | None) -> _Run:
    """The split (the last val_items are held out; the loop never sees them), the model, its
    optimizer, the k-NN graph, and the state of an interrupted run when resuming."""
    device = pick_device(cfg.device)
    data = data if data is not None else load_dataset(cfg.dataset, "train", root=cfg.data_root)
    data = data.subset(cfg.limit)
    n_val = min(cfg.val_items, len(data) // 5)
    x_all = data.x.float()
    x_train, x_val = x_all[: len(x_all) - n_val], x_all[len(x_all) - n_val :]
    if len(x_train) < 2:
        raise ParameterError(f"need at least 2 training items, got {len(x_train)}")
    images = data.kind == IMAGES
    mcfg = ModelConfig(
        input_shape=tuple(data.shape),
        bits=cfg.bits,
        bottleneck=cfg.bottleneck,
        hidden=cfg.hidden,
        conv=cfg.conv,
        noise_std=cfg.noise_std,
        output="sigmoid" if images else "linear",
    )
    model = Autoencoder(mcfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step_model = torch.compile(model) if cfg.compile else model
    neighbours = knn_graph(x_train, cfg.reg) if cfg.reg.neighbours > 0 else None
    # On a GPU the whole training set lives in device memory: batches are index gathers, no copies.
    resident = device.type == "cuda" and _fits_on_gpu(x_train, device)
    x_dev = x_train.to(device) if resident else x_train
    nb_dev = neighbours.to(device) if (neighbours is not None and resident) else neighbours
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    run = _Run(model, opt, step_model, x_train, x_val, data.labels, x_dev, nb_dev, device, images, ckpt)
    if ckpt is not None and cfg.resume and ckpt.is_file():
        _resume(run, cfg)
    return run


def _resume(run: _Run, cfg: TrainConfig) -> None:
    """Continue from the checkpoint: weights, optimizer, history and best weights so far."""
    state = torch.load(run.ckpt, map_location=run.device, weights_only=False)
    if state["config"] != cfg.to_dict() | {"resume": state["config"]["resume"]}:
        raise CheckpointMismatch(f"{run.ckpt} was written by a different training configuration; start afresh")
    run.model.load_state_dict(state["model"])
    run.opt.load_state_dict(state["optimizer"])
    run.history, run.best, run.best_state = state["history"], state["best"], state["best_state"]
    run.start_epoch = state["epoch"] + 1
    run.best_map = max(h["map"] for h in run.history) if run.history else -1.0


def loss_fn(x_hat, x, h, cfg: TrainConfig, images: bool, paired: bool):
    """Reconstruction per item (summed over its values) plus the regularizers; (loss, parts)."""
    flat_hat, flat = x_hat.reshape(len(x), -1), x.reshape(len(x), -1)
    if images:
        rec = F.binary_cross_entropy(flat_hat.clamp(1e-6, 1 - 1e-6), flat, reduction="sum") / len(x)
    else:
        rec = F.mse_loss(flat_hat, flat, reduction="sum") / len(x)
    parts = {"reconstruction": rec, **code_penalties(h, cfg.reg)}
    if paired and cfg.reg.neighbours > 0:
        parts["neighbours"] = cfg.reg.neighbours * spectral_pair_loss(h)
    return sum(parts.values()), parts


MIN_DELTA = 0.002  # a smaller rise of validation mAP is noise, not progress
KEEP_WITHIN = 0.005  # weights within this of the best validation mAP are as good: keep the later ones
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


def knn_graph(x: torch.Tensor, reg: Regularizers) -> torch.Tensor:
    """(n, k) int64: each training item's k nearest neighbours (FAISS, exact L2), in PCA-50 space
    or the input space."""
    import faiss

    from .pca import principal_directions

    flat = x.reshape(len(x), -1).numpy().astype(np.float32)
    if reg.neighbour_space == "pca50" and flat.shape[1] > 50:
        mean, pcs = principal_directions(flat, 50)
        flat = np.ascontiguousarray((flat - mean) @ pcs)
    index = faiss.IndexFlatL2(flat.shape[1])
    index.add(flat)
    k = min(reg.k_neighbours, len(flat) - 1)
    _, ids = index.search(flat, k + 1)
    return torch.from_numpy(ids[:, 1:].astype(np.int64))


@torch.no_grad()
def validation(model: Autoencoder, x_train, x_val, labels, n_train: int, cfg: TrainConfig) -> dict:
    """mAP of held-out queries against a slice of the training set, fraction of dead bits."""
    db = x_train[: cfg.val_database]
    codes_db = _codes(model, db)
    on = unpack(codes_db)[:, : model.cfg.bits].mean(0)
    out = {"bits_on_min": float(on.min()), "bits_on_max": float(on.max())}
    if labels is None or len(x_val) == 0:
        out["map"] = -float(np.mean(np.abs(on - 0.5)))  # unlabeled: prefer balanced bits
        return out
    codes_q = _codes(model, x_val)
    rel = label_relevance(labels[n_train : n_train + len(x_val)].numpy(), labels[: len(db)].numpy())
    rep = evaluate(codes_q, codes_db, rel, k=min(100, len(db)), radius=2)
    out.update(map=rep.map_all, precision_at_radius2=rep.precision_at_radius, empty=rep.empty_ball_fraction)
    return out


def _codes(model: Autoencoder, x) -> np.ndarray:
    """Packed codes; a real bottleneck of any width is padded with 0 bits (distances unchanged)."""
    bits = (model.activations(x) > 0).numpy()
    return pack(np.pad(bits, ((0, 0), (0, (-bits.shape[1]) % 8))))


def _save_checkpoint(path: Path, model, opt, epoch, history, best, best_state, cfg) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": epoch,
        "history": history,
        "best": best,
        "best_state": best_state,
        "config": cfg.to_dict(),
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))


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
