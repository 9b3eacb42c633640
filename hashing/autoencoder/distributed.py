"""Training in several processes (PyTorch DistributedDataParallel): starting them, their process
group, and the few collectives the training loop needs. Nothing here knows about autoencoders.

    launch(fn, nproc, device, args)   # nproc processes run fn(*args) in one process group;
                                      # rank 0's return value comes back to the caller

The processes are started with torch.multiprocessing's spawn on this machine (rendezvous at
MASTER_ADDR=127.0.0.1 and a free port): on the CPU they talk through gloo and share the cores
(cores // nproc threads each); on CUDA through NCCL, rank r on GPU r. Outside a process group
every helper is the single-process identity (rank 0 of 1), so the training loop has one shape.

A script that calls training in several processes must guard its top level with
`if __name__ == "__main__":` (spawn imports the main module again in each process), as with any
multiprocessing. torchrun: a script that joins the group itself (`init_process_group()`) and then
trains in every rank trains in that group (rank 0's result holds the kept weights), e.g.
`torchrun --nproc-per-node 2 my_script.py`; `torchrun ... -m semhash.cli.main train` is refused
(every rank would write the model file): `semhash train --nproc N` starts its processes itself.
"""

from __future__ import annotations

import gc
import os
import pickle
import socket
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from ..errors import ParameterError, SemhashError

MAX_PROCESSES = 64  # more processes than this is a mistake on any one machine
RANK0_WAIT = timedelta(hours=24)  # how long the other ranks wait for rank 0's work (from_rank0)


def check(nproc: int, device: torch.device, batch_size: int) -> None:
    """ParameterError unless nproc processes can train on this device with batches of batch_size."""
    if not 1 <= nproc <= MAX_PROCESSES:
        raise ParameterError(f"training processes must be 1 to {MAX_PROCESSES}, got {nproc}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not initialized():
        raise ParameterError(
            "started as one of several processes (torchrun?) but in no process group: start one process "
            "that trains in nproc processes, or join the group (init_process_group) before training"
        )
    if nproc == 1:
        return
    if device.type not in ("cpu", "cuda"):
        raise ParameterError(f"training in {nproc} processes runs on the CPU or CUDA GPUs, not on {device.type}")
    if device.type == "cuda" and device.index is not None:
        raise ParameterError(f"{nproc} training processes take one GPU each (cuda:0 to cuda:{nproc - 1}): name cuda")
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.type == "cuda" and nproc > gpus:
        raise ParameterError(f"{nproc} training processes on CUDA need {nproc} GPUs, this machine has {gpus}")
    if batch_size < nproc:
        raise ParameterError(f"a batch of {batch_size} items cannot be shared by {nproc} training processes")


def backend(device: torch.device) -> str:
    """gloo for the CPU, nccl for CUDA GPUs."""
    return "nccl" if device.type == "cuda" else "gloo"


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if initialized() else 1


def device_of_rank(device: torch.device) -> torch.device:
    """This process's device: the given one, or on CUDA in a process group the rank's own GPU (its
    LOCAL_RANK, as torchrun sets it, else its rank)."""
    if device.type == "cuda" and initialized():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank())))
    return device


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def launch(fn, nproc: int, device: torch.device, args: tuple = (), threads: int | None = None):
    """Run fn(*args) in nproc fresh processes joined in one process group; rank 0's return value.
    fn must be importable by name (a module-level function) and args picklable (tensors travel
    through shared memory). An error in any process is raised here: the SemhashError it raised
    when it was one (a ParameterError, a CheckpointMismatch, ...), else the spawn error with its
    traceback. threads: intra-op threads per process (default: the cores shared out)."""
    import torch.multiprocessing as mp

    threads = threads or max(1, cores() // nproc)
    with tempfile.TemporaryDirectory(prefix="semhash-ddp-") as tmp:
        port = free_port()
        saved = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(threads)  # the children's OpenMP pools (torch, FAISS) at start
        try:
            mp.spawn(_entry, (fn, nproc, port, backend(device), threads, tmp, args), nprocs=nproc, join=True)
        except (mp.ProcessRaisedException, mp.ProcessExitedException):
            _raise_error_of_a_rank(Path(tmp), nproc)
            raise
        finally:
            _restore("OMP_NUM_THREADS", saved)
        return torch.load(Path(tmp) / "result.pt", weights_only=False)


def _entry(rank_: int, fn, world: int, port: int, backend_: str, threads: int, tmp: str, args: tuple) -> None:
    """One spawned process: join the group, run fn, and (rank 0) leave its value for the parent."""
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world)}
    os.environ.update(env, RANK=str(rank_), LOCAL_RANK=str(rank_))
    torch.set_num_threads(threads)
    try:
        with process_group(rank_, world, backend_):
            value = fn(*args)
        if rank_ == 0:
            torch.save(value, Path(tmp) / "result.pt")
    except BaseException as exc:
        _keep_error(exc, Path(tmp) / f"error-{rank_}.pkl")
        raise


@contextmanager
def process_group(rank_: int, world: int, backend_: str):
    """This process as rank_ of world (rendezvous at MASTER_ADDR:MASTER_PORT), for the block."""
    if backend_ == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank_)))
    dist.init_process_group(backend_, rank=rank_, world_size=world)
    try:
        yield
        gc.collect()  # what still holds the group (a DDP reducer in a reference cycle) lets go first
        dist.barrier()  # no rank tears its connections down while another still uses them
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _keep_error(exc: BaseException, path: Path) -> None:
    """Leave a user's error (a SemhashError) where the parent finds it; others travel as text."""
    if isinstance(exc, SemhashError):
        try:
            path.write_bytes(pickle.dumps(exc))
        except Exception:  # an unpicklable error: the spawn error's traceback still tells
            pass


def _raise_error_of_a_rank(tmp: Path, nproc: int) -> None:
    """Raise the SemhashError a rank left, lowest rank first; return when none did."""
    for r in range(nproc):
        path = tmp / f"error-{r}.pkl"
        if path.is_file():
            raise pickle.loads(path.read_bytes()) from None


def mean(value: float) -> float:
    """The mean of value over the ranks (value itself in one process)."""
    if not initialized():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t)
    return float(t.item()) / world_size()


def decide(flag: bool) -> bool:
    """Rank 0's flag, in every rank (a decision only rank 0 can make, such as stopping)."""
    if not initialized():
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int64, device=_collective_device())
    dist.broadcast(t, src=0)
    return bool(t.item())


def from_rank0(make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """make()'s tensor, computed by rank 0 alone on all of the machine's cores and sent to every
    rank, which waits meanwhile (in one process: make()). For work every rank would otherwise
    repeat on the same cores, such as the k-NN graph (MNIST's in 2 processes: 96 -> 60 s, measured).
    The wait is in a gloo group of its own, on the CPU: a GPU rank would spin a core in a CUDA sync,
    and the default group's timeout (10 min under NCCL) would end a long wait. Returned on the CPU."""
    if not initialized() or world_size() == 1:
        return make()
    group = dist.new_group(backend="gloo", timeout=RANK0_WAIT)
    made = None
    if rank() == 0:
        with _all_cores():
            made = make().cpu().contiguous()
    meta = [None if made is None else (tuple(made.shape), made.dtype)]
    dist.broadcast_object_list(meta, src=0, group=group)
    shape, dtype = meta[0]
    buffer = made if made is not None else torch.empty(shape, dtype=dtype)
    dist.broadcast(buffer, src=0, group=group)
    dist.destroy_process_group(group)
    return buffer


@contextmanager
def _all_cores():
    """This process's torch and FAISS threads on every core for the block (the ranks share the
    cores out between them: launch), while the other ranks wait. FAISS has an OpenMP runtime of its
    own, so each count is set and restored on its own."""
    import faiss

    torch_before, faiss_before = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(cores())
    faiss.omp_set_num_threads(cores())
    try:
        yield
    finally:
        torch.set_num_threads(torch_before)
        faiss.omp_set_num_threads(faiss_before)


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def gather(x: torch.Tensor) -> torch.Tensor:
    """The ranks' x concatenated along dim 0 in rank order (x itself in one process), for a loss
    that every rank computes alike from the whole (a batch statistic): after DDP averages the
    gradients over the ranks, they are those of that loss in one process. Every rank's x must have
    the same shape."""
    if not initialized() or world_size() == 1:
        return x
    return _Gather.apply(x)


class _Gather(torch.autograd.Function):
    """all_gather forward. Backward needs no message: every rank computes the same loss L from the
    same whole, so the gradient of the sum of the ranks' losses (what DDP's average divides by the
    world size) at this rank's slice is world_size times this rank's own dL/dslice."""

    @staticmethod
    def forward(ctx, x):
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x)
        ctx.rows, ctx.rank, ctx.world = len(x), rank(), world_size()
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        start = ctx.rank * ctx.rows
        return grad[start : start + ctx.rows] * ctx.world
