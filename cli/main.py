"""The `semhash` command. Thin: each command parses, calls one library function, prints.

Errors a user can act on (SemhashError) and bad files print one line on stderr and exit 1;
Ctrl-C exits 130. No tracebacks.
"""
from __future__ import annotations

import json
import sys
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
