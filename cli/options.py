"""Options several commands share: one flag vocabulary, and the fixed choices as Enums (so --help
lists them and shell completion offers them; tests/test_commands.py checks they match the library's
tables)."""

from enum import Enum
from pathlib import Path

import typer


class Method(str, Enum):
    ae = "ae"
    itq = "itq"
    pcah = "pcah"
    lsh = "lsh"
    auto = "auto"  # ae and itq both, keeping the better on the validation split


class Bottleneck(str, Enum):
    noise = "noise"
    ste = "ste"
    bernoulli = "bernoulli"
    real = "real"


class Split(str, Enum):
    train = "train"
    test = "test"


class LogLevel(str, Enum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def _devices(incomplete: str) -> list[str]:
    return [d for d in ("auto", "cpu", "cuda", "mps") if d.startswith(incomplete)]


DataRoot = typer.Option(None, "--data-root", help="Data root (default: $SEMHASH_DATA, else ~/.cache/semhash/data).")
Device = typer.Option(
    "auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.", autocompletion=_devices
)
# The data a command reads its items from: exactly one of the three (index build/add, train).
DatasetOpt = typer.Option(None, "--dataset", help="A named data set (mnist, fashion-mnist, cifar10, digits).")
ImagesOpt = typer.Option(None, "--images", help="A folder of images (sub-folders name the classes).")
FeaturesOpt = typer.Option(None, "--features", help="A .npy/.npz feature matrix, one item a row.")
LabelsOpt = typer.Option(None, "--labels", help="Labels (.npy) for --features.")
# --limit means the same everywhere: use the first N items of the input (items to train on or to
# index; queries to search or encode).
Limit = typer.Option(None, "--limit", help="Use the first N items of the input.")


def split_option(default: Split) -> Split:
    return typer.Option(default, "--split", help="Split of a named data set.")


def one_source(dataset: str | None, images: Path | None, features: Path | None) -> str:
    """The one data source among --dataset, --images and --features."""
    from ..hashing.errors import SemhashError

    given = [v for v in (dataset, images, features) if v is not None]
    if len(given) != 1:
        raise SemhashError("give exactly one of --dataset, --images or --features")
    if images is not None and not images.is_dir():
        raise SemhashError(f"{images}: not a folder of images")
    return str(given[0])
