"""Queries from standard input: `-` among an option's values stands for the lines piped in.

echo photos/cat/0.png | semhash search idx.db --item -
semhash search idx.db --code ab12 --code -  < codes.txt   # ab12, then one hex code a line
"""

from __future__ import annotations

import sys

from ..hashing.errors import SemhashError

MAX_STDIN_BYTES = 4 * 2**20  # read at most this much: a runaway producer gets one error, not a full memory


def with_stdin_lines(values: list[str] | None, flag: str, strip: bool = False, stdin=None) -> list[str] | None:
    """values with "-" replaced by the lines of standard input (UTF-8; a trailing CR dropped, each
    line stripped of blanks where strip, blank lines skipped); values themselves when none is "-".
    stdin: a binary file (default: sys.stdin.buffer)."""
    if not values or "-" not in values:
        return values
    if values.count("-") > 1:
        raise SemhashError(f"{flag} - reads standard input once: give it once")
    lines = _lines(stdin if stdin is not None else sys.stdin.buffer, flag)
    lines = [line.strip() for line in lines] if strip else lines
    out = []
    for value in values:
        out += lines if value == "-" else [value]
    return out


def _lines(stdin, flag: str) -> list[str]:
    data = stdin.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise SemhashError(
            f"{flag} -: standard input holds more than {MAX_STDIN_BYTES // 2**20} MiB; pass fewer a call"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SemhashError(f"{flag} -: standard input is not UTF-8 text (byte {exc.start})") from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise SemhashError(f"{flag} -: standard input holds no line")
    return lines
