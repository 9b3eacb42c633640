r"""Text a user controls (item keys, file names, index names), made safe for who reads it: a terminal
(control characters shown, never obeyed) and a spreadsheet (no cell starts a formula; no cell
splits a row).

    visible("a\x1b]0;x")             # a\x1b]0;x: an escape sequence shown (as 4 characters), not run
    CsvWriter(sys.stdout).writerow(["=1+1", "a\rb"])   # '=1+1,"a<CR>b" and a newline
"""

from __future__ import annotations

import csv
import io
import re

# C0 and C1 controls and DEL (a terminal obeys escape sequences, moves the cursor on CR and BS),
# the line and paragraph separators, and the bidirectional overrides and isolates (text that reads
# in another order than it is stored: CVE-2021-42574, "Trojan Source").
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# Leading characters with which a spreadsheet reads a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def visible(text: str) -> str:
    """text with each control character written as Python writes it in a string literal (ESC ->
    the four characters \\x1b, U+202E -> \\u202e); other characters, backslashes included, as they are."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def csv_cell(value):
    """A CSV cell a spreadsheet shows as text: a string starting a formula gets a leading ' (OWASP's
    advice); numbers, None and other strings unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class CsvWriter:
    """csv.writer's writerow and writerows, every cell through csv_cell, rows ending in `newline`,
    and quoted (QUOTE_MINIMAL) where a cell holds the delimiter, a quote, CR or LF, so that no
    reader splits a row. f: a text file opened with newline="" (or standard output)."""

    def __init__(self, f, newline: str = "\n"):
        self._f, self._newline = f, newline
        self._row = io.StringIO()
        # csv quotes a cell holding any character of the line terminator: with "\n" alone, a cell
        # holding a lone CR would go out bare (checked on Python 3.11), and readers end the row there
        self._writer = csv.writer(self._row, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def writerow(self, row) -> None:
        self._row.seek(0)
        self._row.truncate()
        self._writer.writerow([csv_cell(v) for v in row])
        self._f.write(self._row.getvalue()[: -len("\r\n")] + self._newline)

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)
