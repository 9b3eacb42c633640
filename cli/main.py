"""The `semhash` command. Thin: each command parses, calls one library function, prints.

Errors a user can act on (SemhashError) and bad files print one line on stderr and exit 1;
Ctrl-C exits 130. No tracebacks.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from hashing import __version__
from hashing.errors import SemhashError

app = typer.Typer(help="semhash: semantic hashing retrieval (binary codes, Hamming-ball search).",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Inspect data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"semhash {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")) -> None:
    """semhash: semantic hashing retrieval."""


DataRoot = typer.Option(None, "--data-root", help="Data root (default: $SEMHASH_DATA, else ~/.cache/semhash/data).")


@data_app.command("info")
def data_info(name: str = typer.Argument(..., help="mnist, fashion-mnist, cifar10, digits, an image folder or a .npy/.npz file."),
              split: str = typer.Option("train", help="train or test."),
              data_root: Optional[str] = DataRoot,
              no_download: bool = typer.Option(False, "--no-download", help="Never download; use local files only."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Size, item shape, classes and origin of a data set."""
    from hashing.data import describe, load_dataset

    info = describe(load_dataset(name, split=split, root=data_root, download=not no_download))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value)) if value else "-"
        typer.echo(f"{key:>14}: {value}")


@app.command()
def train(dataset: str = typer.Option("mnist", help="Data set to train on (its train split)."),
          bits: int = typer.Option(32, help="Code length: 8 to 256, a multiple of 8."),
          method: str = typer.Option("ae", help="ae (autoencoder), itq, pcah or lsh."),
          output: Path = typer.Option(..., "-o", "--output", help="Where to write the .semhash model."),
          bottleneck: str = typer.Option("noise", help="ae: noise, ste, bernoulli or real."),
          epochs: Optional[int] = typer.Option(None, help="ae: training epochs (default: the recipe's)."),
          device: str = typer.Option("auto", help="ae: auto (cuda, then mps, then cpu), cpu, cuda, ..."),
          neighbours: Optional[float] = typer.Option(None, help="ae: weight of the k-NN graph term (0 turns it off)."),
          conv: bool = typer.Option(False, "--conv", help="ae: convolutional encoder/decoder."),
          checkpoint: Optional[Path] = typer.Option(None, help="ae: checkpoint file, written every epoch."),
          resume: bool = typer.Option(False, "--resume", help="ae: continue from --checkpoint."),
          limit: Optional[int] = typer.Option(None, help="Train on the first N items only."),
          seed: int = typer.Option(0, help="Random seed."),
          data_root: Optional[str] = DataRoot,
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Train a hasher on a data set and save it as a self-describing .semhash model."""
    from hashing.data import load_dataset
    from hashing.hasher import train_to_file

    options = {}
    if method == "ae":
        options = {"bottleneck": bottleneck, "device": device, "conv": conv, "progress": not as_json,
                   "checkpoint": str(checkpoint) if checkpoint else None, "resume": resume}
        if epochs is not None:
            options["epochs"] = epochs
        if neighbours is not None:
            from hashing.train import TrainConfig
            options["reg"] = {**TrainConfig().reg.to_dict(), "neighbours": neighbours}
    data = load_dataset(dataset, "train", root=data_root)
    if limit is not None:
        if limit < 2:
            raise SemhashError(f"--limit must be at least 2, got {limit}")
        data = data.subset(limit)
    summary = train_to_file(method, data, output, bits=bits, seed=seed, **options)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"trained {method} with {bits}-bit codes on {summary['items']:,} items of {dataset} "
               f"in {summary['seconds']:.1f} s")
    if "validation" in summary:
        v = summary["validation"]
        typer.echo(f"validation: mAP {v.get('map', float('nan')):.3f}, precision within radius 2 "
                   f"{v.get('precision_at_radius2', float('nan')):.3f}")
    typer.echo(f"wrote {summary['model']}")


def main() -> None:
    """Console entry point: run the app, turn known errors into one line and an exit code."""
    try:
        app()
    except SemhashError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except (OSError, MemoryError) as exc:
        _fail(f"{type(exc).__name__}: {exc}", 1)


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
