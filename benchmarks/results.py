"""The one result writer of the benchmarks: `<name>.json` (with the version and the machine) and
`<name>.png`, both written atomically into the output folder."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path

from ..hashing.files import atomic_write, atomic_write_text

DEFAULT_OUT = Path("semhash-results")  # every `semhash bench` command's default, in the current folder


def write_result(
    out: str | os.PathLike, name: str, result: dict, plot: Callable[[Path], None] | None
) -> tuple[Path, Path | None]:
    """Write `out/<name>.json` and, when plot is given, `out/<name>.png` (plot(path) saves a PNG at path).

    `result` gains, in place, "benchmark" (name), "semhash" (the version) and "machine" (cpu_count,
    platform, plus any "machine" entries it already had), so the caller returns what was written.
    Returns the two paths (the PNG's is None without a plot, or without matplotlib: the figures
    are in the JSON all the same)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    machine = {"cpu_count": os.cpu_count(), "platform": platform.platform(), **result.get("machine", {})}
    from ..hashing import __version__

    ordered = {"benchmark": name, "semhash": __version__, **result, "machine": machine}
    result.clear()
    result.update(ordered)
    json_path = atomic_write_text(out / f"{name}.json", json.dumps(result, indent=1))
    if plot is None or not can_plot():
        return json_path, None
    return json_path, atomic_write(out / f"{name}.png", lambda tmp: plot(Path(tmp)))


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Save a figure as a PNG at path (a plot callback's last step) and free it."""
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    pyplot().close(fig)


def can_plot() -> bool:
    """Whether matplotlib is installed (the [bench] extra)."""
    from importlib.util import find_spec

    return find_spec("matplotlib") is not None


def written(paths: tuple[Path, Path | None]) -> str:
    """The line a benchmark ends with: what it wrote, and why there is no plot when there is none."""
    if paths[1] is None:
        return f"wrote {paths[0]} (no plot: matplotlib is not installed; pip install 'semhash[bench]')"
    return f"wrote {paths[0]} and {paths[1]}"
