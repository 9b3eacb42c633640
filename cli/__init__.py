"""semhash command-line interface (typer)."""
