"""How much a command costs: its wall time and the peak memory of it and its worker processes."""

from __future__ import annotations

import os
import subprocess
import threading
import time


class OverMemoryCap(RuntimeError):
    """A command was killed for holding more memory than its cap (a failure of its own is a plain
    RuntimeError)."""


def peak_rss(command: list[str], cap: int | None = None) -> tuple[float, int, str]:
    """(seconds, peak bytes of the process and its children together, stderr) of a command; with
    cap (bytes), the command is killed once it holds more (a shared machine must not run out),
    and OverMemoryCap says so; RuntimeError when it fails."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, start = [0], time.perf_counter()

    def watch():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            if cap is not None and peak[0] > cap:
                proc.kill()
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - start
    thread.join()
    if cap is not None and peak[0] > cap:
        raise OverMemoryCap(f"{command[3:6]} stopped: it held over {cap >> 20:,} MB")
    if proc.returncode:
        raise RuntimeError(f"{command[3:6]} failed: {err.strip()}")
    return seconds, peak[0], err


def _tree_rss(pid: int) -> int:
    """Bytes of memory of a process and its descendants: the sum of their proportional set sizes
    (PSS: pages shared by forked workers are counted once, not once a worker as RSS counts them)."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                total += sum(_tree_rss(int(c)) for c in f.read().split())
    except (OSError, StopIteration):
        pass
    return total
