"""Train an autoencoder hasher: the loop in plain sight (nanoGPT's train.py habit).

    from semhash.hashing.autoencoder.config import TrainConfig
    from semhash.hashing.autoencoder.train import train
    result = train(TrainConfig(dataset="mnist", bits=32))   # -> TrainResult(model, history, ...)

Training is `steps` optimizer steps on random mini-batches, whatever the data's size, of the loss
of losses.py (reconstruction, the regularizers, the k-NN graph's neighbour pairs of graph.py, the
bottleneck's own term). Every `eval_every` steps (a validation round) the held-out items are
encoded and scored (validation.py); the round's figure picks the weights that are kept, and
training stops when neither it nor the training loss has improved for `patience` rounds.

In several processes (`nproc`, PyTorch DistributedDataParallel; distributed.py starts them)
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
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .. import inputs
from ..data import load_dataset
from ..dataset import Dataset
from ..errors import ParameterError
from . import checkpoints, distributed
from .config import TrainConfig, pick_device, schedule, validate_config
from .graph import knn_graph
from .losses import loss_fn
from .model import Autoencoder, ModelConfig
from .regularizers import affine_jitter, corrupt
from .sparse_rows import SparseRows, as_rows, take
from .validation import KeepBest, Validation, make_validation, validate


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
    output: str  # the decoder's: "sigmoid", "linear" or "multinomial" (losses.loss_fn)
    ckpt: Path | None
    history: list = field(default_factory=list)
    keep: KeepBest = field(default_factory=KeepBest)  # the kept weights, and when to stop
    step: int = 0
    seen: int = 0


def train(
    cfg: TrainConfig, data: Dataset | None = None, progress: bool = True, on_epoch=None, title: str = "training"
) -> TrainResult:
    """Train an autoencoder on `data` (default: cfg.dataset's train split); the loop is here.
    on_epoch(model, metrics), if given, runs after each validation round (for experiments); title
    names the progress bar.
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
    task = bar.add_task(title, total=total, completed=run.step, info="")
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
                run.keep.update(run.model, metrics)
                line = _round_line(metrics)
                bar.update(task, info=line)
                if progress:
                    bar.console.print(line)  # a line per round, also in logs where the bar cannot redraw
                if run.ckpt is not None:
                    checkpoints.save(run.ckpt, cfg, run.model, run.opt, run.step, run.history, run.keep)
            t_round = time.perf_counter()
            if distributed.decide(run.keep.stale >= cfg.patience):  # rank 0's decision, in every rank
                break
    return _finish(run, time.perf_counter() - t_start)


def training_data(cfg: TrainConfig, data: Dataset | None) -> Dataset:
    """The items a run trains on: data (default: cfg.dataset's train split), its first cfg.limit."""
    return (data if data is not None else load_dataset(cfg.dataset, "train", root=cfg.data_root)).subset(cfg.limit)


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
    views = cfg.reg.affine > 0 and run.x_dev.ndim == 4  # images: each seen under its own affine transform
    rows = idx
    if run.nb_dev is not None:  # each item travels with one of its k nearest neighbours (or itself)
        partners = _partners(run.nb_dev, idx, cfg.reg.self_pairs if views else 0.0)
        rows = torch.cat([idx.to(partners.device), partners])
    xb = run.x_dev[rows.to(run.x_dev.device)].to(run.device, non_blocking=True)
    paired = run.nb_dev is not None
    if _sparse_input(run, cfg):  # bags of words: the first layer reads the batch's nonzeros alone
        seen = run.x_dev.sparse(rows)
    else:
        seen = corrupt(affine_jitter(xb, cfg.reg.affine) if views else xb, cfg.reg)
    with _autocast(run.device):
        x_hat, _, h, extra = run.step_model(seen)
    # the loss outside autocast, in float32: binary cross-entropy refuses autocast on CUDA
    # ("unsafe to autocast", hit on the first GPU run), and the regularizers' batch statistics want float32
    h = _whole_batch(h.float(), paired)
    loss, _ = loss_fn(x_hat.float(), xb, h, cfg, run.output, paired=paired, extra=extra.float())
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    run.seen += len(xb)
    return float(loss.detach())


def _sparse_input(run: _Run, cfg: TrainConfig) -> bool:
    """Whether the model reads the batch as a sparse CSR tensor: sparse items on the CPU, an MLP,
    no corruption of the input and no torch.compile (the GPU keeps the dense batch: its sparse
    product under bf16 autocast is unmeasured). The same function of the weights as the dense
    batch, to float32 rounding; 20 Newsgroups' recipe trains 1.4x faster on 2 cores (0.12 s a step
    against 0.17; benchmarks/README.md)."""
    plain = cfg.reg.mask_prob == 0 and cfg.reg.input_noise == 0 and not cfg.conv and not cfg.compile
    return plain and isinstance(run.x_dev, SparseRows) and run.device.type == "cpu"


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
    metrics = validate(run.model, run.x_db, run.x_val, run.val)
    metrics.update(epoch=len(run.history), step=run.step, loss=loss, seconds=time.perf_counter() - t_round)
    run.history.append(metrics)
    return metrics


def _round_line(m: dict) -> str:
    figure = f"val {m['criterion']} mAP {m['score']:.3f}" if "score" in m else "no validation figure"
    return (
        f"step {m['step']}: loss {m['loss']:.3f}  {figure}  "
        f"bits on {m['bits_on_min']:.2f}-{m['bits_on_max']:.2f}  {m['seconds']:.1f} s"
    )


def _finish(run: _Run, seconds: float) -> TrainResult:
    """The kept weights on the CPU, in eval mode, and what the run measured."""
    model = run.model.cpu()
    if run.keep.state is not None:
        model.load_state_dict(run.keep.state)
    model.eval()
    world = distributed.world_size()
    speed = run.seen * world / max(seconds, 1e-9)  # every rank's items
    device = str(run.device) if world == 1 else f"{run.device.type} x{world}"
    return TrainResult(model, run.history, run.keep.best, device, seconds, speed, run.step, run.val)


def _spawn(cfg: TrainConfig, data: Dataset | None, progress: bool, on_epoch) -> TrainResult:
    """Train in cfg.nproc processes on this process's data; the TrainResult from what rank 0 sends
    back (its kept weights and what it measured). The data travels as a file the ranks map (no
    copy through shared memory, which containers keep small); the split is seeded, so this process
    makes it again, as each rank did."""
    import tempfile

    if on_epoch is not None:
        raise ParameterError("a callback after each validation round needs training in one process")
    data = training_data(cfg, data)
    if cfg.resume and Path(cfg.checkpoint).is_file():
        checkpoints.load(Path(cfg.checkpoint), cfg, "cpu")  # a mismatch is refused before any process starts
    with tempfile.TemporaryDirectory(prefix="semhash-train-") as tmp:
        path = Path(tmp) / "data.pt"
        torch.save(_compact(data), path)
        sent = distributed.launch(
            _rank_main, cfg.nproc, pick_device(cfg.device), (cfg, str(path), progress), cfg.threads
        )
    model = Autoencoder(ModelConfig.from_dict(sent.pop("architecture")))
    model.load_state_dict(sent.pop("weights"))
    model.eval()
    return TrainResult(model, **sent, validation=make_validation(torch.from_numpy(data.x), data.labels, cfg))


def _compact(data: Dataset) -> dict:
    """data as the ranks map it: its items and labels as tensors holding only their own items (a
    subset is a view that would save them all), the rest as a Dataset of no items."""
    from dataclasses import replace

    own = lambda a: None if a is None else torch.from_numpy(np.array(a))  # noqa: E731  (a copy)
    rest = replace(data, x=data.x[:0], labels=None if data.labels is None else data.labels[:0])
    return {"x": own(data.x), "labels": own(data.labels), "rest": rest}


def _rank_main(cfg: TrainConfig, data_path: str, progress: bool) -> dict | None:
    """One process of _spawn, in its process group: the training loop; rank 0 returns its result
    as plain data (the validation split holds functions, which do not travel)."""
    from dataclasses import replace

    sent = torch.load(data_path, mmap=True, weights_only=False)
    as_array = lambda t: None if t is None else t.numpy()  # noqa: E731  (views of the mapped file)
    data = replace(sent["rest"], x=as_array(sent["x"]), labels=as_array(sent["labels"]))
    result = train(cfg, data, progress=progress and distributed.rank() == 0)
    if distributed.rank() != 0:
        return None
    sent = {k: getattr(result, k) for k in ("history", "best", "device", "seconds", "samples_per_second", "steps")}
    return {"architecture": result.model.cfg.to_dict(), "weights": result.model.state_dict(), **sent}


def _setup(cfg: TrainConfig, data: Dataset | None) -> _Run:
    """The split (a seeded random sample held out; the loop never sees it), the model, its
    optimizer, the k-NN graph, and the state of an interrupted run when resuming."""
    device = distributed.device_of_rank(pick_device(cfg.device))
    data = training_data(cfg, data)
    x_all = as_rows(data.x)  # (n, *shape) float32 sharing the array's memory, or SparseRows
    val = make_validation(x_all, data.labels, cfg)
    if len(val.train_rows) < max(2, cfg.nproc):
        raise ParameterError(f"need at least {max(2, cfg.nproc)} training items, got {len(val.train_rows)}")
    x_train = take(x_all, np.sort(val.train_rows))  # in the data's order: batches are random
    x_val, x_db = take(x_all, val.val_rows), take(x_all, val.train_rows[: val.n_db])
    output = inputs.get(data.kind).decoder  # how the decoder's outputs are scored (losses.loss_fn)
    model = Autoencoder(cfg.model_config(data.shape, output)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step_model = _step_model(model, device, cfg.compile)
    # the same graph in every rank (seeded views): rank 0 builds it on all the cores, the others receive it
    graph = partial(knn_graph, x_train, cfg.reg, cfg.seed)
    neighbours = distributed.from_rank0(graph) if cfg.reg.neighbours > 0 else None
    # On a GPU the whole training set lives in device memory: batches are index gathers, no copies.
    resident = device.type == "cuda" and isinstance(x_train, torch.Tensor) and _fits_on_gpu(x_train, device)
    x_dev = x_train.to(device) if resident else x_train
    nb_dev = neighbours.to(device) if (neighbours is not None and resident) else neighbours
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    run = _Run(model, opt, step_model, x_train, x_val, x_db, val, x_dev, nb_dev, device, output, ckpt)
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


def _resume(run: _Run, cfg: TrainConfig) -> None:
    """Continue from the checkpoint: weights, optimizer, history, kept weights and step count."""
    state = checkpoints.load(run.ckpt, cfg, run.device)
    run.model.load_state_dict(state["model"])
    run.opt.load_state_dict(state["optimizer"])
    run.history, run.step = state["history"], state["step"]
    run.keep = KeepBest.resumed(state["history"], state["best"], state["best_state"], state["stale"])


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
