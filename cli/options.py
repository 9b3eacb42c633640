"""Options several commands share."""

import typer

DataRoot = typer.Option(None, "--data-root", help="Data root (default: $SEMHASH_DATA, else ~/.cache/semhash/data).")
