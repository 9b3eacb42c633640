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
from .errors import ParameterError
from .files import atomic_write
from .hasher import IMAGES
from .metrics import evaluate, label_relevance
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
    if name != "auto":
        return torch.device(name)
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


def train(cfg: TrainConfig, data: Dataset | None = None, progress: bool = True, on_epoch=None) -> TrainResult:
    """on_epoch(model, metrics), if given, runs after each epoch's validation (for experiments)."""
    validate_config(cfg)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    data = data if data is not None else load_dataset(cfg.dataset, "train", root=cfg.data_root)
    data = data.subset(cfg.limit)

    # --- split: the last val_items are held out; the loop never sees them ---
    n_val = min(cfg.val_items, len(data) // 5)
    x_all = data.x.float()
    x_train, x_val = x_all[: len(x_all) - n_val], x_all[len(x_all) - n_val :]
    labels = data.labels
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
    on_gpu = device.type == "cuda"
    resident = on_gpu and _fits_on_gpu(x_train, device)
    x_dev = x_train.to(device) if resident else x_train
    nb_dev = neighbours.to(device) if (neighbours is not None and resident) else neighbours
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu else nullcontext()

    history, best, best_state, start_epoch = [], {"map": -1.0}, None, 0
    best_map = -1.0
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    if ckpt is not None and cfg.resume and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        if state["config"] != cfg.to_dict() | {"resume": state["config"]["resume"]}:
            raise ParameterError(
                f"{ckpt} was written by a different training configuration; start afresh without --resume"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history, best, best_state, start_epoch = (
            state["history"],
            state["best"],
            state["best_state"],
            state["epoch"] + 1,
        )
        best_map = max(h["map"] for h in history) if history else -1.0

    bar = _progress(progress)
    task = bar.add_task("training", total=cfg.epochs * len(x_train), completed=start_epoch * len(x_train), info="")
    t_start, seen, stale = time.perf_counter(), 0, 0
    with bar:
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            perm = torch.randperm(len(x_train), device=x_dev.device)
            total, t_epoch = 0.0, time.perf_counter()
            for i in range(0, len(perm), cfg.batch_size):
                idx = perm[i : i + cfg.batch_size]
                xb = x_dev[idx]
                if nb_dev is not None:  # each item travels with one of its k nearest neighbours
                    pick = torch.randint(0, nb_dev.shape[1], (len(idx),), device=nb_dev.device)
                    xb = torch.cat([xb, x_dev[nb_dev[idx.to(nb_dev.device), pick].to(x_dev.device)]])
                xb = xb.to(device, non_blocking=True)
                with autocast:
                    x_hat, a, h = step_model(corrupt(xb, cfg.reg))
                    loss, parts = loss_fn(x_hat.float(), xb, h.float(), cfg, images, paired=nb_dev is not None)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                seen += len(xb)
                bar.update(
                    task,
                    advance=len(idx),
                    info=f"loss {float(loss.detach()):.3f}  {seen / (time.perf_counter() - t_start):,.0f} samples/s",
                )
            metrics = validation(model, x_train, x_val, labels, len(x_train), cfg)
            metrics.update(epoch=epoch, loss=total / len(x_train), seconds=time.perf_counter() - t_epoch)
            history.append(metrics)
            if on_epoch is not None:
                on_epoch(model, metrics)
            # Early stopping on validation mAP. When mAP is flat (within KEEP_WITHIN of the best),
            # later weights are kept: measured, codes keep sharpening (precision within radius 2
            # rises) long after mAP stops moving.
            improved = metrics["map"] > best_map + MIN_DELTA
            best_map, stale = (metrics["map"], 0) if improved else (best_map, stale + 1)
            if metrics["map"] >= best_map - KEEP_WITHIN:
                best = metrics
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            summary = (
                f"epoch {epoch}: loss {metrics['loss']:.3f}  val mAP {metrics['map']:.3f}  "
                f"bits on {metrics['bits_on_min']:.2f}-{metrics['bits_on_max']:.2f}  {metrics['seconds']:.1f} s"
            )
            bar.update(task, info=summary)
            if progress:
                bar.console.print(summary)  # a line per epoch, also in logs where the bar cannot redraw
            if ckpt is not None:
                _save_checkpoint(ckpt, model, opt, epoch, history, best, best_state, cfg)
            if stale >= cfg.patience:
                break
    seconds = time.perf_counter() - t_start
    model = model.cpu()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, history, best, str(device), seconds, seen / max(seconds, 1e-9))


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
