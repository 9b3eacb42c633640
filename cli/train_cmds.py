"""`semhash data info|export` and `semhash train`: each parses, calls one library function, prints."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import typer

from ..hashing import inputs
from ..hashing.errors import (
    CodesCollapsed,
)
from .app import app, data_app, item_limit, spinner
from .options import (
    BottleneckName,
    DataRoot,
    DatasetOpt,
    Device,
    LabelsOpt,
    Limit,
    Method,
    Split,
    one_source,
    split_option,
    with_sources,
)


@data_app.command("info")
def data_info(
    name: str = typer.Argument(..., help="mnist, fashion-mnist, cifar10, digits, an image folder or a .npy/.npz file."),
    split: Split = split_option(Split.train),
    data_root: str | None = DataRoot,
    no_download: bool = typer.Option(False, "--no-download", help="Never download; use local files only."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Size, item shape, classes and origin of a data set."""
    from ..hashing.data import load_dataset
    from ..hashing.dataset import describe

    info = describe(load_dataset(name, split=split.value, root=data_root, download=not no_download))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value)) if value else "-"
        typer.echo(f"{key:>14}: {value}")


@data_app.command("export")
def data_export(
    name: str = typer.Argument(..., help="A data set: mnist, fashion-mnist, cifar10, digits, or a path."),
    item: int = typer.Option(0, help="Row of the item in its split."),
    split: Split = split_option(Split.test),
    output: Path = typer.Option(..., "-o", "--output", help="File to write (a PNG for images, .npy for vectors)."),
    data_root: str | None = DataRoot,
) -> None:
    """Write one item of a data set as a file a query reads back: a PNG for an image, a .npy for a
    vector (to search with, for instance)."""
    from ..hashing.data import load_dataset

    ds = load_dataset(name, split=split.value, root=data_root)
    label = "" if ds.labels is None else f" (label {int(ds.labels[item])})" if 0 <= item < len(ds) else ""
    typer.echo(f"wrote {inputs.get(ds.kind).save_item(ds, item, output)}{label}")


MethodOpt = typer.Option(Method.ae, help="ae (autoencoder), itq, pcah, lsh, or auto (ae and itq: the better).")
BottleneckOpt = typer.Option(None, help="ae: the binary bottleneck (default: the input kind's recipe).")
MembersOpt = typer.Option(
    None,
    help="ae: models trained one after another and kept as one (default: 2 for texts, else 1; 2: twice the "
    "training, better codes).",
)
FeaturizerOpt = typer.Option(
    [],
    "--featurizer",
    help="texts: a vectorizer option KEY=VALUE (repeat it): vocabulary=20000, ngrams=1,2, stop_words=none, "
    "sublinear_tf=false, min_df=5, use_idf=false (counts).",
)


@app.command()
@with_sources
def train(
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the .semhash model."),
    dataset: str | None = DatasetOpt,
    labels: Path | None = LabelsOpt,
    bits: int = typer.Option(32, help="Code length: 8 to 256, a multiple of 8."),
    method: Method = MethodOpt,
    bottleneck: BottleneckName | None = BottleneckOpt,
    steps: int | None = typer.Option(None, help="ae: optimizer steps (default: the recipe's 11,000)."),
    epochs: int | None = typer.Option(None, help="ae: passes over the data instead of --steps."),
    device: str = Device,
    neighbours: float | None = typer.Option(None, help="ae: weight of the k-NN graph term (0 turns it off)."),
    views: float | None = typer.Option(None, help="ae, images: strength of the random affine views (0: off)."),
    conv: bool = typer.Option(False, "--conv", help="ae: convolutional encoder/decoder."),
    checkpoint: Path | None = typer.Option(None, help="ae: checkpoint file, written every validation round."),
    resume: bool = typer.Option(False, "--resume", help="ae: continue from --checkpoint."),
    nproc: int = typer.Option(1, "--nproc", help="ae: training processes (DDP; on CUDA, one GPU each)."),
    members: int | None = MembersOpt,
    limit: int | None = Limit,
    seed: int = typer.Option(0, help="Random seed."),
    featurizer: list[str] = FeaturizerOpt,
    data_root: str | None = DataRoot,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    **sources,
) -> None:
    """Train a hasher on a data set (its train split) and save it as a self-describing .semhash model."""
    from ..hashing.methods import train_model

    source = one_source(dataset, sources)
    options = {}
    if method in (Method.ae, Method.auto):
        reg = {"neighbours": neighbours, "affine": views}
        given = {"bottleneck": bottleneck and bottleneck.value, "steps": steps, "epochs": epochs, "members": members}
        options = _ae_options(given, device, reg, conv, checkpoint, resume, nproc, as_json)
    # the autoencoder draws its own progress bar; the other fits get a spinner (terminals only)
    busy = spinner(f"fitting {method.value}", not as_json and method not in (Method.ae, Method.auto))
    with warnings.catch_warnings(), busy:  # a collapse is reported once, below, not also as a Python warning
        warnings.simplefilter("ignore", CodesCollapsed)
        summary = train_model(
            method.value,
            source,
            output,
            bits=bits,
            seed=seed,
            limit=item_limit(limit, 2),
            data_root=data_root,
            labels=labels,
            featurizer=_key_values(featurizer),
            **options,
        )
    _print_trained(summary, as_json)


def _key_values(pairs: list[str]) -> dict:
    """["vocabulary=20000", "ngrams=1,2", "use_idf=false"] -> {"vocabulary": 20000, "ngrams": (1, 2),
    "use_idf": False}: whole numbers, true/false, comma lists of whole numbers, else the text.
    The featurizer checks the keys and values (one error line naming the wrong one)."""
    from ..hashing.errors import ParameterError

    options = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--featurizer takes KEY=VALUE, got {pair!r}")
        options[key.strip()] = _value(text.strip())
    return options


def _value(text: str):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    parts = text.split(",")
    if all(p.strip().lstrip("-").isdigit() for p in parts):
        numbers = tuple(int(p) for p in parts)
        return numbers[0] if len(numbers) == 1 else numbers
    return text


def _print_trained(summary: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"trained {summary['method']} with {summary['bits']}-bit codes on {summary['items']:,} items of "
        f"{summary['dataset']} in {summary['seconds']:.1f} s"
    )
    for name, key in (("autoencoder", "validation"), ("PCA-ITQ", "itq_validation")):
        v = summary.get(key) or {}
        if "score" in v:
            typer.echo(
                f"validation of {name} ({v['criterion']} criterion): mAP {v['score']:.3f}, "
                f"precision within radius 2 {v['precision_at_radius2']:.3f}"
            )
    if "verdict" in summary:
        typer.echo(summary["verdict"])
    for warning in summary.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"wrote {summary['model']}")


def _ae_options(given: dict, device, reg: dict, conv, checkpoint, resume, nproc, quiet: bool) -> dict:
    """The autoencoder's options (hashing.autoencoder.config.TrainConfig's fields) from train's flags
    (given and reg: TrainConfig's and the regularizers' fields, None where not given)."""
    options = {
        "device": device,
        "conv": conv,
        "progress": not quiet,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "resume": resume,
        "nproc": nproc,
    }
    options.update({k: v for k, v in given.items() if v is not None})
    reg = {k: v for k, v in reg.items() if v is not None}
    if reg:
        options["reg"] = reg  # the fields given; the others come from the input kind's recipe
    return options
