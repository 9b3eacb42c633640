"""The `semhash` command. Thin: each command parses, calls one library function, prints.

Errors a user can act on (SemhashError) and bad files print one line on stderr and exit 1;
Ctrl-C exits 130. No tracebacks.
"""

from __future__ import annotations

import os
import sys

import typer

from ..hashing import inputs
from ..hashing.errors import (
    CheckpointMismatch,
    DataMissing,
    Interrupted,
    ModelMissing,
    NeedsResume,
    NoInput,
    NoQuery,
    NotImages,
    OutputExists,
    translate,
)
from ..hashing.safe_text import visible
from . import index_cmds, query_cmds, train_cmds  # noqa: F401  (each registers its commands)
from .app import app

# What to do about each kind of error, in this command's flags: the library's messages name none.
HINTS = {
    NeedsResume: "use --resume",
    ModelMissing: "pass --model",
    NotImages: "query it with --vector",
    NoQuery: f"use one of {', '.join(k.flag for k in inputs.kinds())}, --item, --code or --dataset",
    NoInput: f"use one of {', '.join(k.flag for k in inputs.kinds())} or --dataset",
    DataMissing: "or pass --data-root",
    CheckpointMismatch: "start afresh without --resume",
    OutputExists: "pass --force to replace it",
}


def main() -> None:
    """Console entry point: run the app; every error goes through hashing.errors.translate and
    comes out as one line on stderr and a non-zero exit (130 for Ctrl-C, 2 for a usage error)."""
    try:  # typer >= 0.24 carries its own copy of click; before, click itself
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:
        from click.exceptions import ClickException, NoArgsIsHelpError

    try:
        code = app(standalone_mode=False)  # usage errors come back here, not as a framed box
        sys.stdout.flush()  # a reader that left fails this here, not Python's flush at exit
    except BrokenPipeError:
        _reader_left()
    except SystemExit as exc:  # click and rich turn a closed pipe into exit 1, the error its context
        if isinstance(exc.__context__, BrokenPipeError):
            _reader_left()
        raise
    except NoArgsIsHelpError as exc:
        typer.echo(exc.format_message())
        sys.exit(2)
    except ClickException as exc:
        # one line; pydantic's "Value error, " prefix says nothing to a user
        _fail(" ".join(exc.format_message().replace("Value error, ", "").split()), exc.exit_code)
    except typer.Abort:
        _fail("interrupted", 130)
    except BaseException as exc:  # noqa: B036  (KeyboardInterrupt included: one line, exit 130)
        err = translate(exc)
        if err is None:
            raise
        hint = next((flag for cls, flag in HINTS.items() if isinstance(err, cls)), None)
        _fail(f"{err}; {hint}" if hint else str(err), 130 if isinstance(err, Interrupted) else 1)
    if code == 130:  # typer turns Ctrl-C into a silent exit 130
        _fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {visible(message)}", err=True)  # a key in a message shows, never acts
    sys.exit(code)


def _reader_left() -> None:
    """Standard output's reader left (`semhash search ... | head -1`): end quietly with exit 0, as
    a pipeline expects. Python flushes standard output at exit: pointed at devnull, that flush
    cannot fail again (the recipe of the documentation of Python's signal module)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


if __name__ == "__main__":
    main()
