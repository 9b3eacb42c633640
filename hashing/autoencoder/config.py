"""What a training run is (TrainConfig, whose fields are also the autoencoder hasher's options):
which configurations are refused before any work (validate_config), how long the run is in steps
and validation rounds (schedule), and the device it names (pick_device).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from ..codes import check_bits
from ..errors import ParameterError
from . import distributed, latent_code
from .model import ModelConfig
from .registry import BOTTLENECKS, bottleneck_class
from .regularizers import Regularizers

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
    # 0: the bottleneck has `bits` units and the code is their signs. Else it has max(bits,
    # latent_bits) units, and the code is PCA-ITQ of their trained activations (latent_code.py)
    latent_bits: int = 0
    # models trained one after another (seeds seed, seed + 1, ...) and merged into one of
    # block-diagonal layers; the code is PCA-ITQ of all their latents (members.py): twice the
    # training for +0.013 to +0.026 P@100 on 20 Newsgroups with two (the texts recipe's default)
    members: int = 1
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

    def model_config(self, input_shape: tuple[int, ...], output: str) -> ModelConfig:
        """The architecture this run trains, for items of input_shape whose kind's decoder is
        output ("sigmoid": images in [0, 1]; "linear": features; "multinomial": bags of words)."""
        return ModelConfig(
            input_shape=tuple(input_shape),
            bits=latent_code.width(self.bits, self.latent_bits),
            bottleneck=self.bottleneck,
            hidden=self.hidden,
            conv=self.conv,
            noise_std=self.noise_std,
            output=output,
        )


MAX_MEMBERS = 8  # each member is a whole training
MAX_AFFINE = 4.0  # views' strength: 4 turns images by up to 40 degrees, past which a 6 becomes a 9
MAX_GRAPH_VIEWS = 32  # each view adds the data's size to the graph's search
MAX_NEIGHBOUR_POOL = 8  # shared_neighbours' pool of p*k: its counts cost p^2 k^2 a row
VALIDATION_ROUNDS = 30  # rounds in a run whose length is given in steps


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


def _check_members(cfg: TrainConfig, continuous: bool) -> None:
    m = cfg.members
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= MAX_MEMBERS:
        raise ParameterError(f"members must be a whole number in [1, {MAX_MEMBERS}], got {m!r}")
    if m > 1 and continuous:
        raise ParameterError(
            f"members' latents are cut by PCA-ITQ into binary codes; {cfg.bottleneck} makes continuous ones"
        )
    if m > 1 and cfg.conv:
        raise ParameterError("members are merged as MLPs: train a convolutional model alone (members 1)")
    if m > 1 and cfg.checkpoint:
        raise ParameterError("a checkpoint holds one model's training: train with members 1 to keep one")


def validate_config(cfg: TrainConfig) -> None:
    """ParameterError for the first field of cfg that no run could train with."""
    continuous = cfg.bottleneck in BOTTLENECKS and not bottleneck_class(cfg.bottleneck).binary
    if not continuous or cfg.bits % 8 == 0:
        check_bits(cfg.bits)  # binary codes are packed: multiples of 8
    elif cfg.bits < 1:
        raise ParameterError(f"bottleneck width must be positive, got {cfg.bits}")
    latent = cfg.latent_bits
    if isinstance(latent, bool) or not isinstance(latent, int) or (latent and (latent < 8 or latent % 8)):
        raise ParameterError(f"the latent's width must be 0 (the code's bits) or a multiple of 8, got {latent!r}")
    if latent and continuous:
        raise ParameterError(f"a latent cut by PCA-ITQ makes binary codes; {cfg.bottleneck} makes continuous ones")
    _check_members(cfg, continuous)
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
    if not 0 <= cfg.reg.neighbour_words <= 1:
        raise ParameterError(f"the share of the neighbour's words must be in [0, 1], got {cfg.reg.neighbour_words}")
    if not 0 <= cfg.reg.self_pairs <= 1:
        raise ParameterError(f"the share of self pairs must be in [0, 1], got {cfg.reg.self_pairs}")
    if cfg.bottleneck not in BOTTLENECKS:
        raise ParameterError(f"unknown bottleneck {cfg.bottleneck!r}: use one of {', '.join(BOTTLENECKS)}")
    if cfg.resume and not cfg.checkpoint:
        raise ParameterError("resuming continues from a checkpoint: name the checkpoint file")
    device = pick_device(cfg.device)  # an unknown or absent device, before any work
    distributed.check(cfg.nproc, device, cfg.batch_size)
