"""Near-duplicates planted in real corpora, found by `semhash dedup` and by the tools users would
pick instead, in one run (issue 27).

Corpora (dedup_planted.py): 20 Newsgroups documents with 1-3 edited copies of a sample of them,
filled up to `texts` documents with generated ones; MNIST digits and generated photos with 1-3
edited copies of a sample. Every method runs as commands of its own over the same files, each
timed and its peak memory (PSS of the process and its workers) read from /proc:

- ours: `semhash train` (PCA-ITQ; texts: on the first TEXT_TRAIN documents), `semhash index build`,
  `semhash dedup` (at its default threshold, timed; then once more at the lowest threshold, for the
  precision-recall curve and the best threshold), through `ours()`, the one place that knows the dedup command's output;
- text: datasketch's MinHashLSH at every (num_perm, threshold) of the sweep, word 3-shingles;
- images: imagehash's pHash, dHash and wHash, every pair within 32 bits by brute force, and
  imagededup's PHash, DHash and WHash with its own search (within its default 10 bits), each at
  its best Hamming threshold.

A peer whose package is missing is skipped with a note. Scores: pair precision, recall and F1 per
transformation (dedup_planted.per_edit). Writes dedup.json and dedup.png (precision-recall).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import dedup_peers as peers
from . import dedup_planted as planted
from .processes import OverMemoryCap, peak_rss
from .results import DEFAULT_OUT, pyplot, save_figure, write_result, written

SEMHASH = [sys.executable, "-c", "from semhash.cli.main import main; main()"]
BITS = 64  # ours: PCA-ITQ codes of this length
NUM_PERMS = (64, 128, 256)
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
HASHES = {  # tool: (hash, the most bits a pair it reports may differ by)
    "imagehash": [(h, 32) for h in ("phash", "dhash", "whash")],  # fewer past 5M pairs (dedup_peers)
    "imagededup": [(h, 10) for h in ("PHash", "DHash", "WHash")],  # its own default, 10
}
TEXT_TRAIN = 20_000  # documents ours trains on (a model is fitted once, then indexes any number)
SIZES = {  # corpus: (items, originals copied); "tiny" for the tests
    "full": {"texts": (100_000, 5_000), "mnist": (20_000, 4_000), "photos": (4_000, 800)},
    "tiny": {"texts": (1_500, 150), "mnist": (400, 80), "photos": (80, 16)},
}


def command(cmd: list[str], stdout: Path | None = None) -> tuple[float, float, str]:
    """(seconds, peak MB, stderr) of a command, its standard output into the file stdout."""
    if stdout is not None:
        cmd = ["sh", "-c", f"exec {shlex.join(cmd)} > {shlex.quote(str(stdout))}"]
    seconds, peak, err = peak_rss(cmd, cap=MEMORY_CAP)
    return seconds, peak / 2**20, err


# --- ours: the one place that knows `semhash dedup`'s command line and output -----------------


# The curve run's threshold in each verifier's units: the lowest score, but for texts' Jaccard
# 0.1 (unrelated documents' 3-shingle sets share ~1%: millions of candidates would be listed).
LOWEST = {"correlation": -1.0, "cosine": -1.0, "Jaccard": 0.1}
CODES_RADIUS = 3  # the curve's radius when an index is decided by its codes alone
FALLBACK_RADIUS = 4  # ours' radius when the derived one's run goes over MEMORY_CAP
MEMORY_CAP = 8 << 30  # bytes: a command holding more is stopped (2-core, 24 GB shared machine)


def ours(kind: str, corpus: Path, train: Path, work: Path, item_of) -> dict:
    """Train (on `train`), index `corpus` and dedup it, as a user would from the command line.
    kind: the input kind's source flag ("texts", "images"); item_of(key) -> item number.
    Returns {"steps": {step: {"seconds", "peak_mb"}}, "pairs": the verified pairs at the default
    threshold (radius derived from it), "curve_pairs": every candidate at that radius with its
    score (threshold at the lowest), "threshold", "radius", "units"}; pairs as {"i", "j", "score"}."""
    model, db = work / f"{kind}.semhash", work / f"{kind}.db"
    steps = {}
    for step, cmd in (
        ("train", ["train", f"--{kind}", str(train), "--method", "itq", "--bits", str(BITS), "-o", str(model)]),
        ("index build", ["index", "build", str(db), "--model", str(model), f"--{kind}", str(corpus)]),
    ):
        seconds, peak, _ = command(SEMHASH + cmd)
        steps[step] = {"seconds": seconds, "peak_mb": peak}
    dedup = SEMHASH + ["dedup", str(db), "--pairs", "--format", "json"]
    try:
        seconds, peak, _ = command(dedup, work / "default.json")
        note = ""
    except OverMemoryCap as e:  # the derived radius did not fit: a smaller one given, said in the row
        print(f"  semhash dedup at its defaults: {e}", file=sys.stderr)
        dedup += ["--radius", str(FALLBACK_RADIUS)]
        seconds, peak, _ = command(dedup, work / "default.json")
        note = f"; derived radius over {MEMORY_CAP >> 30} GB, radius {FALLBACK_RADIUS} given"
    steps["dedup"] = {"seconds": seconds, "peak_mb": peak}
    default = json.loads((work / "default.json").read_text())
    default["note"] = note
    if default["units"] in LOWEST:  # verified: every candidate at the same radius, scored
        wider = ["--radius", str(default["radius"]), "--threshold", str(LOWEST[default["units"]])]
    else:  # codes alone (the kind keeps no signatures): every pair within a wider radius
        wider = ["--radius", str(CODES_RADIUS)]
    try:
        seconds, peak, _ = command(dedup + wider, work / "curve.json")
        curve = json.loads((work / "curve.json").read_text())
    except OverMemoryCap as e:  # over the memory cap: the curve is the default run's pairs alone
        seconds, peak, curve = float("nan"), float("nan"), default
        print(f"  curve run {wider}: {e}", file=sys.stderr)
    return {
        "steps": steps,
        "curve_step": {"seconds": seconds, "peak_mb": peak},
        "pairs": _pairs_of(default, item_of),
        "curve_pairs": _pairs_of(curve, item_of),
        **{k: default[k] for k in ("threshold", "radius", "units", "candidates", "note")},
    }


def _pairs_of(result: dict, item_of) -> dict:
    """The pairs of `semhash dedup --pairs --format json`'s output as item numbers and scores."""
    rows, alone = result["pairs"], result["units"] not in LOWEST
    return {
        "i": np.array([item_of(r["a"]) for r in rows], dtype=np.int64),
        "j": np.array([item_of(r["b"]) for r in rows], dtype=np.int64),
        "score": np.array([-r["distance"] if alone else r["score"] for r in rows], dtype=np.float64),
    }


# --- the peers ----------------------------------------------------------------------------------


def peer(method: str, corpus: Path, work: Path, params: dict) -> tuple[dict, dict, float, float]:
    """Run a peer in a process of its own: (arrays, meta, wall seconds, peak MB)."""
    out = work / f"{method}-{abs(hash(json.dumps(params)))}.npz"
    cmd = [sys.executable, "-m", "semhash.benchmarks.dedup_peers", method, str(corpus), str(out), json.dumps(params)]
    seconds, peak, _ = command(cmd)
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
        meta = json.loads(str(z["meta"]))
    return arrays, meta, seconds, peak


def minhash_sweep(corpus: Path, work: Path, origin, edit, log) -> list[dict]:
    """One row per (num_perm, threshold): MinHashLSH's candidates scored, its time (sketches plus
    that threshold's index and queries) and its process's peak memory."""
    rows = []
    for num_perm in NUM_PERMS:
        params = {"num_perm": num_perm, "ngram": 3, "thresholds": list(THRESHOLDS)}
        arrays, meta, _, peak = peer("minhash", corpus, work, params)
        for t in THRESHOLDS:
            pairs = {k: arrays[f"{k}_{t}"] for k in ("i", "j", "score")}
            seconds = meta["minhash_s"] + meta["lsh_s"][str(t)]
            row = _scored(f"MinHashLSH num_perm={num_perm} threshold={t}", pairs, origin, edit, None, seconds, peak)
            rows.append({**row, "num_perm": num_perm, "threshold": t})
        log(f"  MinHashLSH num_perm={num_perm}: sketches {meta['minhash_s']:.1f} s, peak {peak:.0f} MB")
    return rows


def hash_rows(tool: str, folder: Path, work: Path, origin, edit, log) -> list[dict]:
    """One row per hash of a perceptual-hash tool (HASHES), at its best Hamming threshold (chosen
    over the whole corpus); a note and no rows when the tool is not installed, a note and no row
    for a hash whose run was stopped (over MEMORY_CAP)."""
    skipped = peers.missing(tool)
    if skipped:
        log(f"  {tool} skipped: pip install {skipped}")
        return []
    rows = []
    for h, most in HASHES[tool]:
        try:
            arrays, meta, _, peak = peer(tool, folder, work, {"hash": h, "max_distance": most})
        except OverMemoryCap as e:  # over MEMORY_CAP (imagededup's WHash on 28,000 MNIST digits): no row
            log(f"  {tool} {h}: {e}")
            continue
        pairs = {k: arrays[f"{k}_0"] for k in ("i", "j", "score")}
        best = planted.best_threshold(planted.pr_curve(pairs, origin))["threshold"]
        seconds = meta["hash_s"] + meta["match_s"]
        row = _scored(f"{tool} {h} <= {-best:.0f} bits", pairs, origin, edit, best, seconds, peak)
        rows.append({**row, "max_bits": -best, "curve": _curve(pairs, origin)})
        log(f"  {tool} {h}: hashing {meta['hash_s']:.1f} s, pairs {meta['match_s']:.1f} s, peak {peak:.0f} MB")
    return rows


def _scored(method: str, pairs: dict, origin, edit, threshold, seconds: float, peak: float) -> dict:
    return {
        "method": method,
        "seconds": seconds,
        "peak_mb": peak,
        "pairs": int(len(pairs["i"])),
        "scores": planted.per_edit(pairs, origin, edit, threshold),
    }


def _at(units: str, threshold: float) -> str:
    """A threshold in words: a score's at least, a distance's (scored as -distance) at most."""
    return f"{units} >= {threshold:.3g}" if units in LOWEST else f"{units} <= {-threshold:g}"


def _curve(pairs: dict, origin, points: int = 200) -> dict:
    """A method's precision-recall curve, thinned to at most `points` points, for the plot."""
    c = planted.pr_curve(pairs, origin)
    k = np.unique(np.linspace(0, max(len(c["score"]) - 1, 0), points).astype(int)) if len(c["score"]) else []
    return {"precision": c["precision"][k].tolist(), "recall": c["recall"][k].tolist()}


def ours_rows(kind: str, corpus: Path, train: Path, work: Path, origin, edit, item_of) -> list[dict]:
    """Ours at its default threshold (the timed run: train, index build, dedup) and at the best
    threshold of the curve run (same radius, every candidate scored; its dedup step's time)."""
    mine = work / f"ours-{corpus.stem}"
    mine.mkdir()
    got = ours(kind, corpus, train, mine, item_of)
    steps = got["steps"]
    setup = steps["train"]["seconds"] + steps["index build"]["seconds"]
    peak = max(s["peak_mb"] for s in steps.values())
    t, r, units = got["threshold"], got["radius"], got["units"]
    what = _at(units, t) if t is not None else "codes alone"
    default = _scored(
        f"semhash ({what}, radius {r}{got['note']})",
        got["pairs"],
        origin,
        edit,
        None,
        setup + steps["dedup"]["seconds"],
        peak,
    )
    curve = got["curve_pairs"]
    best = planted.best_threshold(planted.pr_curve(curve, origin))["threshold"]
    at_best = _scored(
        f"semhash best ({_at(units, best)}, radius {r})",
        curve,
        origin,
        edit,
        best,
        setup + got["curve_step"]["seconds"],
        max(peak, got["curve_step"]["peak_mb"]),
    )
    info = {"steps": steps, "candidates": got["candidates"], "radius": r, "threshold": t}
    return [{**default, **info}, {**at_best, **info, "threshold": best, "curve": _curve(curve, origin)}]


# --- the corpora ---------------------------------------------------------------------------------


def text_part(n: int, copied: int, root: Path, work: Path, log) -> dict:
    rng = np.random.default_rng(0)
    docs, labels = planted.read_newsgroups(root / "20newsgroups")
    keep = planted.distinct(docs)
    docs, labels = [docs[k] for k in keep], labels[keep]
    items, origin, edit = planted.plant_texts(rng, docs, labels, n, copied)
    corpus = work / "corpus.jsonl"
    planted.save_text_corpus(corpus, items)
    log(
        f"texts: {n:,} documents ({min(len(docs), n):,} real ones, pairwise distinct), "
        f"{int((edit != '').sum()):,} copies"
    )
    train = work / "train.jsonl"  # the model learns from the first TEXT_TRAIN (shuffled) documents,
    planted.save_text_corpus(train, items[:TEXT_TRAIN])  # as the image parts' from images of their own
    rows = ours_rows("texts", corpus, train, work, origin, edit, lambda key: int(key))
    skipped = peers.missing("minhash")
    if skipped:
        log(f"  MinHashLSH skipped: pip install {skipped}")
    else:
        sweep = minhash_sweep(corpus, work, origin, edit, log)
        best = max(sweep, key=lambda r: r["scores"]["all"]["f1"])
        rows.append({**best, "method": f"MinHashLSH best: {best['method'][11:]}", "sweep": sweep})
    return {"corpus": "20 Newsgroups", "items": n, "copies": int((edit != "").sum()), "rows": rows}


def image_part(name: str, originals: list, train: list, copied: int, work: Path, log) -> dict:
    rng = np.random.default_rng(1)
    folder, train_dir = work / name, work / f"{name}-train"
    origin, edit = planted.plant_images(rng, originals, folder, copied)
    train_dir.mkdir()
    for k, im in enumerate(train):
        im.save(train_dir / f"{k}.png")
    log(f"{name}: {len(origin):,} images, {int((edit != '').sum()):,} copies")
    rows = ours_rows("images", folder, train_dir, work, origin, edit, lambda key: int(Path(key).stem))
    rows += hash_rows("imagehash", folder, work, origin, edit, log)
    rows += hash_rows("imagededup", folder, work, origin, edit, log)
    return {"corpus": name, "items": len(origin), "copies": int((edit != "").sum()), "rows": rows}


def mnist_images(root: Path, n: int, train: int) -> tuple[list, list]:
    from PIL import Image

    digits = planted.read_mnist(root / "MNIST" / "raw", min(60_000, 2 * n + train))
    digits, rest = digits[train:], digits[:train]  # the model's training digits: the first ones
    digits = digits[planted.distinct_images(digits)[:n]]
    return [Image.fromarray(d, "L") for d in digits], [Image.fromarray(d, "L") for d in rest]


def photo_images(n: int, train: int) -> tuple[list, list]:
    from .pictures import picture

    rng = np.random.default_rng(2)
    photos = [picture(rng, 320, 240) for _ in range(n)]
    small = np.stack([np.asarray(p.convert("L").resize((32, 24))) for p in photos])
    photos = [photos[k] for k in planted.distinct_images(small)]  # random: none goes, checked all the same
    return photos, [picture(rng, 64, 48).resize((32, 32)) for _ in range(train)]


def run(size: str = "full", parts=("texts", "mnist", "photos"), data_root=None, out=DEFAULT_OUT, log=print) -> dict:
    from ..hashing.data import data_root as root_of

    root, sizes = root_of(data_root), SIZES[size]
    work = Path(tempfile.mkdtemp(prefix="semhash-dedup-"))
    try:
        result = {"size": size, "bits": BITS, "corpora": []}
        if "texts" in parts:
            result["corpora"].append(text_part(*sizes["texts"], root, work, log))
        if "mnist" in parts:
            n, copied = sizes["mnist"]
            result["corpora"].append(image_part("mnist", *mnist_images(root, n, min(n, 5000)), copied, work, log))
        if "photos" in parts:
            n, copied = sizes["photos"]
            result["corpora"].append(image_part("photos", *photo_images(n, 500), copied, work, log))
        for part in result["corpora"]:
            _table(part, log)
        result["ratios"] = _ratios(result["corpora"])
        for k, v in result["ratios"].items():
            log(f"{k}: {v if isinstance(v, str) else format(v, '.3g')}")
        log(written(write_result(out, "dedup", result, lambda path: _plot(result["corpora"], path))))
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _table(part: dict, log) -> None:
    edits = list(part["rows"][0]["scores"])
    log(f"\n{part['corpus']}: {part['items']:,} items, {part['copies']:,} planted copies; pair F1 per transformation")
    log(" | ".join(["method", *edits, "P all", "R all", "s", "peak MB"]))
    for r in part["rows"]:
        s = r["scores"]
        cells = [f"{s[e]['f1']:.3f}" for e in edits] + [f"{s['all']['precision']:.3f}", f"{s['all']['recall']:.3f}"]
        log(" | ".join([r["method"], *cells, f"{r['seconds']:.1f}", f"{r['peak_mb']:.0f}"]))


def _ratios(corpora: list[dict]) -> dict:
    """Ours beside the best peer of each corpus (by F1 over all pairs): F1 differences at our
    default and best thresholds, and the time ratio of our default run (train, index, dedup)."""
    out = {}
    for part in corpora:
        rows = part["rows"]
        if len(rows) < 3:
            continue
        peer_best = max(rows[2:], key=lambda r: r["scores"]["all"]["f1"])
        name, f1 = part["corpus"], peer_best["scores"]["all"]["f1"]
        out[f"{name}: best peer"] = peer_best["method"]
        out[f"{name}: F1 ours default - best peer"] = rows[0]["scores"]["all"]["f1"] - f1
        out[f"{name}: F1 ours best - best peer"] = rows[1]["scores"]["all"]["f1"] - f1
        out[f"{name}: time ours default / best peer"] = rows[0]["seconds"] / peer_best["seconds"]
    return out


def _plot(corpora: list[dict], path: Path) -> None:
    """Precision against recall, a panel a corpus: each method's curve over its score threshold, a
    dot at the threshold in its table row; ours at its default threshold a black star; every
    MinHashLSH setting a cross."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(corpora), figsize=(4.8 * len(corpora), 4.2), squeeze=False)
    for ax, part in zip(axes[0], corpora):
        for r in part["rows"]:
            s = r["scores"]["all"]
            if "curve" in r:
                (line,) = ax.plot(r["curve"]["recall"], r["curve"]["precision"], label=r["method"], lw=1.2)
                ax.scatter([s["recall"]], [s["precision"]], s=25, color=line.get_color())
            elif "sweep" in r:
                pts = [(x["scores"]["all"]["recall"], x["scores"]["all"]["precision"]) for x in r["sweep"]]
                ax.scatter(*zip(*pts), s=14, marker="x", color="grey", label="MinHashLSH settings")
                ax.scatter([s["recall"]], [s["precision"]], s=40, marker="x", color="red", label=r["method"])
            else:
                ax.scatter([s["recall"]], [s["precision"]], s=70, marker="*", color="black", label=r["method"])
        ax.set_title(f"{part['corpus']} ({part['items']:,} items)")
        ax.set_xlabel("pair recall")
        ax.set_ylabel("pair precision")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=6, loc="lower left")
    save_figure(fig, path)
