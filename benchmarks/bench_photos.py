"""A camera roll into an index: generated photos of phone and camera sizes through `semhash index
build --images`, against a bare PIL loop over the same files on the same cores.

The folder: N files, hard links to a pool of distinct generated pictures (JPEG 2000x1500 and
4000x3000, a tenth EXIF-rotated; PNG RGBA, grey and 16-bit; CMYK JPEG) plus three corrupt files,
so that generating it costs the pool, not N encodes. Each build runs as a command in a process
of its own; its peak memory is the largest sum of the proportional set sizes of it and its workers
(PSS: a page a forked worker shares with its parent counts once), read from /proc every 50 ms.
Writes photos.json and photos.png.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .pictures import model_for, picture
from .processes import peak_rss
from .results import DEFAULT_OUT, pyplot, save_figure, write_result, written

MODELS = {"28x28 grey": (1, 28, 28), "64x64 RGB": (3, 64, 64)}


def make_roll(folder: Path, n: int, pool: int = 40, seed: int = 0) -> list[str]:
    """n files in folder (hard links to `pool` generated ones) and three corrupt files; their names."""
    from PIL import Image

    rng, made = np.random.default_rng(seed), []
    source = folder / ".pool"
    source.mkdir(parents=True)
    for i in range(pool):
        w, h = (4000, 3000) if i % 4 == 0 else (2000, 1500)
        im, name = picture(rng, w, h), source / f"p{i}.jpg"
        if i % 10 == 3:  # stored turned left, shown upright by its EXIF orientation
            exif = Image.Exif()
            exif[0x0112] = 6
            im.rotate(90, expand=True).save(name, quality=88, exif=exif)
        elif i % 10 == 5:
            name = name.with_suffix(".png")
            im.resize((800, 600)).convert(("RGBA", "L", "I;16")[i % 3] if i % 3 < 2 else "L").save(name)
        elif i % 10 == 7:
            im.convert("CMYK").save(name, quality=88)
        else:
            im.save(name, quality=88)
        made.append(name)
    roll = folder / "roll"
    roll.mkdir()
    for i in range(n):
        src = made[i % pool]
        os.link(src, roll / f"IMG_{i:06d}{src.suffix}")
    for i in range(3):
        (roll / f"broken_{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + rng.bytes(2000))
    return sorted(p.name for p in roll.iterdir())


def pil_loop(files: list[str], size: tuple[int, int], grey: bool) -> int:
    """The bare loop a user would write: open, draft, convert, resize; returns the images read."""
    from PIL import Image

    done = 0
    for f in files:
        try:
            with Image.open(f) as im:
                im.draft("L" if grey else "RGB", (size[1], size[0]))
                im.convert("L" if grey else "RGB").resize((size[1], size[0]), Image.Resampling.BILINEAR)
                done += 1
        except OSError:
            pass
    return done


def bare_pil(roll: Path, size, grey: bool, workers: int) -> float:
    """Seconds of pil_loop over the folder's files, split over `workers` processes."""
    from concurrent.futures import ProcessPoolExecutor

    files = sorted(str(p) for p in roll.iterdir())
    start = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(pil_loop, [files[i::workers] for i in range(workers)], [size] * workers, [grey] * workers))
    return time.perf_counter() - start


def run(n: int = 20_000, out=DEFAULT_OUT, log=print) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="semhash-photos-"))
    try:
        names = make_roll(folder, n)
        log(f"{len(names):,} files ({n:,} photos and 3 corrupt) in {folder / 'roll'}")
        rows, workers = [], os.cpu_count() or 1
        for label, shape in MODELS.items():
            model = model_for(folder, shape)
            db = folder / f"{shape[0]}x{shape[1]}.db"
            cmd = [sys.executable, "-c", "from semhash.cli.main import main; main()", "index", "build", str(db)]
            seconds, peak, err = peak_rss(cmd + ["--model", str(model), "--images", str(folder / "roll"), "--json"])
            bare = bare_pil(folder / "roll", shape[1:], shape[0] == 1, workers)
            row = {
                "model": label,
                "files": len(names),
                "seconds": seconds,
                "files_per_s": len(names) / seconds,
                "peak_rss_mb": peak / 2**20,
                "bare_pil_seconds": bare,
                "ratio_to_bare_pil": bare / seconds,
                "skipped_named": [w for w in err.splitlines() if w.startswith("warning:")],
            }
            rows.append(row)
            log(
                f"{label}: {seconds:.1f} s ({row['files_per_s']:.0f} files/s), peak {row['peak_rss_mb']:.0f} MB; "
                f"bare PIL loop on {workers} processes {bare:.1f} s: semhash / it {row['ratio_to_bare_pil']:.2f}x"
            )
            for w in row["skipped_named"]:
                log(f"  {w}")
        result = {"photos": n, "workers": workers, "runs": rows}
        log(written(write_result(out, "photos", result, lambda path: _plot(rows, path))))
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    labels = [r["model"] for r in rows]
    a.bar(labels, [r["files_per_s"] for r in rows], label="semhash index build")
    a.bar(labels, [r["files"] / r["bare_pil_seconds"] for r in rows], alpha=0.4, label="bare PIL loop")
    a.set_ylabel("files / s")
    a.legend()
    b.bar(labels, [r["peak_rss_mb"] for r in rows])
    b.axhline(1024, color="red", linestyle="--", label="1 GB")
    b.set_ylabel("peak memory, MB")
    b.legend()
    save_figure(fig, path)
