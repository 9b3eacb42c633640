"""Planted near-duplicates for `semhash bench dedup`: corpora with known edited copies, and the
scoring of the pairs a method reports against them.

A corpus is items 0..n-1 plus two arrays: `origin[i]`, the item i was copied from (itself when it
is no copy), and `edit[i]`, the transformation that made it ("" when it is no copy). The truth is
every pair of items sharing an origin (an original and its copies, and the copies among
themselves). A method reports pairs (i, j) with a score, higher meaning more alike (a Hamming
distance d is reported as -d), so one run gives its whole precision-recall curve.

Scores per transformation t are those of the corpus holding only the untouched items and the
copies made by t: the pairs that touch another transformation's copies are left out, on both sides.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np

# --- text -------------------------------------------------------------------------------------

TEXT_EDITS = ("insert", "delete", "replace", "reorder", "header")


def read_newsgroups(folder: Path, min_words: int = 20) -> tuple[list[list[str]], np.ndarray]:
    """The 20 Newsgroups documents of train.jsonl and test.jsonl (lower-cased, no punctuation) as
    word lists, with their group labels; documents under min_words words and exact repeats are
    left out (a repeat would be a duplicate nobody planted)."""
    _need(folder / "train.jsonl", folder / "test.jsonl")
    docs, labels, seen = [], [], set()
    for split in ("train", "test"):
        with open(folder / f"{split}.jsonl", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                words = row["text"].split()
                key = " ".join(words)
                if len(words) >= min_words and key not in seen:
                    seen.add(key)
                    docs.append(words)
                    labels.append(row["label"])
    _, labels = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    return docs, labels


def distinct(docs: list[list[str]], ngram: int = 3, max_jaccard: float = 0.1, max_df: int = 500) -> np.ndarray:
    """Positions of documents to keep so that no two kept ones are near-duplicates already (quoted
    replies, reposts: the corpus's own, which nobody planted): of every pair whose word n-gram
    sets have a Jaccard similarity of max_jaccard or more, the later one goes. The shared n-grams
    are counted over those in 2 to max_df documents (commoner ones are phrases, not copies)."""
    from scipy.sparse import csr_matrix

    sets = [np.unique([hash(tuple(d[k : k + ngram])) for k in range(max(len(d) - ngram + 1, 1))]) for d in docs]
    sizes = np.array([len(x) for x in sets])
    grams, col = np.unique(np.concatenate(sets), return_inverse=True)
    df = np.bincount(col)
    row = np.repeat(np.arange(len(docs)), sizes)
    keep = (df[col] >= 2) & (df[col] <= max_df)
    x = csr_matrix((np.ones(int(keep.sum()), np.int32), (row[keep], col[keep])), shape=(len(docs), len(grams)))
    shared = (x @ x.T).tocoo()
    i, j, c = shared.row, shared.col, shared.data
    near = (i < j) & (c >= max_jaccard * (sizes[i] + sizes[j] - c))
    return np.setdiff1d(np.arange(len(docs)), j[near])


def generated_documents(rng, docs: list[list[str]], labels: np.ndarray, n: int) -> list[list[str]]:
    """n documents resampled from the corpus: each takes a random real document's group and length
    and draws its words from that group's word distribution (unigrams: a copy of no document)."""
    vocab: dict[str, int] = {}
    ids = [np.array([vocab.setdefault(w, len(vocab)) for w in d], dtype=np.int64) for d in docs]
    words = np.array(list(vocab), dtype=object)
    src = rng.integers(len(docs), size=n)
    out: list[list[str]] = [[] for _ in range(n)]
    for g in np.unique(labels[src]):
        counts = np.bincount(np.concatenate([ids[d] for d in np.flatnonzero(labels == g)]), minlength=len(vocab))
        cdf = np.cumsum(counts) / counts.sum()
        mine = np.flatnonzero(labels[src] == g)
        lengths = np.array([len(docs[s]) for s in src[mine]])
        drawn = words[np.searchsorted(cdf, rng.random(int(lengths.sum())), side="right").clip(0, len(words) - 1)]
        for k, part in zip(mine, np.split(drawn, np.cumsum(lengths)[:-1])):
            out[k] = list(part)
    return out


def edit_text(rng, words: list[str], edit: str, vocab: np.ndarray) -> tuple[list[str], float]:
    """A copy of words under one edit, and its strength (the share of words edited, or of sentences
    moved): insert, delete or replace 5-30% of the words; reorder the sentences (the corpus has no
    punctuation: runs of 8-20 words); add a header line (a subject and a sender) on top."""
    rate = float(rng.uniform(0.05, 0.30))
    n = len(words)
    if edit in ("insert", "delete", "replace"):
        hit = rng.random(n) < rate
        new = list(rng.choice(vocab, size=int(hit.sum())))
        out, k = [], 0
        for w, h in zip(words, hit):
            if edit == "insert" and h:
                out += [new[k], w]
            elif edit == "replace" and h:
                out.append(new[k])
            elif not (edit == "delete" and h):
                out.append(w)
            k += int(h)
        return out, float(hit.mean())
    if edit == "reorder":
        cuts = np.cumsum(rng.integers(8, 21, size=n // 8 + 1))
        sentences = [words[a:b] for a, b in zip(np.r_[0, cuts], cuts) if a < n]
        order = rng.permutation(len(sentences))
        return [w for s in order for w in sentences[s]], float(np.mean(order != np.arange(len(order))))
    if edit == "header":
        subject = list(rng.choice(words, size=int(rng.integers(3, 7))))
        head = ["subject", "re", *subject, "from", *rng.choice(vocab, size=2), "organization", rng.choice(vocab)]
        return [str(w) for w in head] + words, len(head) / (n + len(head))
    raise ValueError(f"unknown text edit {edit!r}")


def plant_texts(
    rng, docs: list[list[str]], labels: np.ndarray, n: int, copied: int
) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """A corpus of n documents: the real ones (the first n when there are more), 1-3 edited copies
    each of `copied` of them (one edit a copy, the edits in turn), and generated documents to fill
    up to n; shuffled. Returns (documents, origin, edit)."""
    copies_each = rng.integers(1, 4, size=copied)
    real = min(len(docs), n - int(copies_each.sum()))
    if real < copied:
        raise ValueError(f"{n} documents cannot hold {copied} originals and their copies")
    base = docs[:real] + generated_documents(rng, docs, labels, n - real - int(copies_each.sum()))
    vocab = np.array(sorted({w for d in docs[:2000] for w in d}), dtype=object)
    items, origin, edit = list(base), list(range(len(base))), [""] * len(base)
    for k, src in enumerate(rng.choice(real, size=copied, replace=False)):
        for c in range(copies_each[k]):
            kind = TEXT_EDITS[(len(items) + c) % len(TEXT_EDITS)]
            items.append(edit_text(rng, base[src], kind, vocab)[0])
            origin.append(int(src))
            edit.append(kind)
    order = rng.permutation(len(items))
    where = np.empty_like(order)
    where[order] = np.arange(len(order))
    return [items[i] for i in order], where[np.asarray(origin)[order]], np.asarray(edit, dtype=object)[order]


# --- images -----------------------------------------------------------------------------------

IMAGE_EDITS = ("jpeg", "resize", "crop", "shift", "brighten", "rotate")


def read_mnist(folder: Path, n: int) -> np.ndarray:
    """The first n MNIST training digits, (n, 28, 28) uint8, from the raw idx files (gzipped)."""
    _need(folder / "train-images-idx3-ubyte.gz")
    with gzip.open(folder / "train-images-idx3-ubyte.gz") as f:
        raw = f.read(16 + n * 784)
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:n].copy()


def distinct_images(pixels: np.ndarray, max_corr: float = 0.9, block: int = 2000) -> np.ndarray:
    """Positions of images to keep so that no two kept ones are near-duplicates already (MNIST has
    many: 29% of its first 20,000 digits have another at a pixel correlation of 0.9 or more, two
    people's near-identical ones): of every pair whose pixels (n, ...) correlate at max_corr or
    more (Pearson), the later one goes."""
    x = pixels.reshape(len(pixels), -1).astype(np.float32)
    x -= x.mean(axis=1, keepdims=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)
    drop = np.zeros(len(x), bool)
    for a in range(0, len(x), block):
        c = x[a : a + block] @ x[: a + block].T  # each image against the earlier ones (and itself)
        i, j = np.nonzero(c >= max_corr)
        drop[i[j < i + a] + a] = True
    return np.flatnonzero(~drop)


def edit_image(rng, im, edit: str) -> tuple[object, str, float]:
    """(copy, file suffix, strength) of a PIL image under one edit: re-encoded as JPEG (quality
    30-90), resized (50-200%), cropped (up to 10% of each side), shifted (1-4 pixels, each way),
    brightened (x1.1-1.5) or rotated (1-5 degrees, either way)."""
    from PIL import Image, ImageEnhance

    w, h = im.size
    if edit == "jpeg":
        q = int(rng.integers(30, 91))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=q)
        return Image.open(io.BytesIO(buf.getvalue())), ".jpg", q
    if edit == "resize":
        s = float(rng.uniform(0.5, 2.0))
        return im.resize((max(8, round(w * s)), max(8, round(h * s))), Image.Resampling.BILINEAR), ".png", s
    if edit == "crop":
        c = rng.uniform(0.0, 0.10, size=4) * [w, h, w, h]
        box = (round(c[0]), round(c[1]), w - round(c[2]), h - round(c[3]))
        return im.crop(box), ".png", float(1 - (box[2] - box[0]) * (box[3] - box[1]) / (w * h))
    if edit == "shift":
        dx, dy = rng.integers(1, 5, size=2) * rng.choice([-1, 1], size=2)
        return im.crop((int(dx), int(dy), w + int(dx), h + int(dy))), ".png", float(max(abs(dx), abs(dy)))
    if edit == "brighten":
        f = float(rng.uniform(1.1, 1.5))
        return ImageEnhance.Brightness(im).enhance(f), ".png", f
    if edit == "rotate":
        a = float(rng.uniform(1, 5) * rng.choice([-1, 1]))
        return im.rotate(a, resample=Image.Resampling.BILINEAR), ".png", a
    raise ValueError(f"unknown image edit {edit!r}")


def plant_images(rng, originals: list, folder: Path, copied: int) -> tuple[np.ndarray, np.ndarray]:
    """Write the originals (PIL images) and 1-3 edited copies each of `copied` of them (one edit a
    copy, the edits in turn) into folder as <i>.png / <i>.jpg, shuffled; returns (origin, edit)."""
    copies_each = rng.integers(1, 4, size=copied)
    jobs = [(i, "") for i in range(len(originals))]
    for k, src in enumerate(rng.choice(len(originals), size=copied, replace=False)):
        jobs += [(int(src), IMAGE_EDITS[(len(jobs) + c) % len(IMAGE_EDITS)]) for c in range(copies_each[k])]
    order = rng.permutation(len(jobs))
    folder.mkdir(parents=True, exist_ok=True)
    first = np.empty(len(originals), dtype=np.int64)  # where each original lands
    for pos, j in enumerate(order):
        if not jobs[j][1]:
            first[jobs[j][0]] = pos
    origin, edit = np.empty(len(jobs), dtype=np.int64), np.empty(len(jobs), dtype=object)
    for pos, j in enumerate(order):
        src, kind = jobs[j]
        im, suffix = (originals[src], ".png") if not kind else edit_image(rng, originals[src], kind)[:2]
        im.save(folder / f"{pos:06d}{suffix}")
        origin[pos], edit[pos] = first[src], kind
    return origin, edit


def _need(*files: Path) -> None:
    """DataError naming the first of files that is missing."""
    from ..hashing.errors import DataError

    for f in files:
        if not f.is_file():
            raise DataError(f"{f}: no such file (the data root is $SEMHASH_DATA or --data-root)")


# --- scoring ----------------------------------------------------------------------------------


def pair_ids(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """One int64 a pair, the same for (i, j) and (j, i)."""
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    return np.minimum(i, j) * n + np.maximum(i, j)


def truth_pairs(origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j, of every two items sharing an origin."""
    order = np.argsort(origin, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(origin[order])) + 1)
    pairs = [(a, b) for g in groups if len(g) > 1 for x, a in enumerate(g) for b in g[x + 1 :]]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    p = np.sort(np.asarray(pairs, dtype=np.int64), axis=1)
    return p[:, 0], p[:, 1]


def pr_curve(pairs: dict, origin: np.ndarray, keep: np.ndarray | None = None) -> dict:
    """Precision and recall of a method's pairs {"i", "j", "score"} at every score threshold, over
    the items where keep is True (all by default). Returns {"score", "precision", "recall",
    "truth"}: the k-th entry holds the pairs scoring at least score[k], scores descending."""
    n = len(origin)
    keep = np.ones(n, bool) if keep is None else keep
    ti, tj = truth_pairs(origin)
    inside = keep[ti] & keep[tj]
    truth = np.unique(pair_ids(ti[inside], tj[inside], n))
    i, j, score = (np.asarray(pairs[k]) for k in ("i", "j", "score"))
    valid = (i != j) & keep[i] & keep[j]
    ids, score = pair_ids(i[valid], j[valid], n), score[valid].astype(np.float64)
    order = np.lexsort((ids, -score))
    ids, score = ids[order], score[order]
    ids, first = np.unique(ids, return_index=True)  # a pair reported twice counts once, at its best
    order = np.sort(first)
    ids, score = ids[np.argsort(first)], score[order]
    hits = np.cumsum(np.isin(ids, truth))
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1] if len(score) else np.zeros(0, np.int64)
    return {
        "score": score[last],
        "precision": hits[last] / (last + 1),
        "recall": hits[last] / max(len(truth), 1),
        "truth": int(len(truth)),
    }


def at_threshold(curve: dict, threshold: float | None) -> dict:
    """{"precision", "recall", "f1", "threshold"} of the pairs scoring at least threshold (None:
    all the pairs the method reported)."""
    s = curve["score"]
    k = len(s) - 1 if threshold is None else int(np.searchsorted(-s, -threshold, side="right")) - 1
    if k < 0:
        return {"precision": 1.0, "recall": 0.0, "f1": 0.0, "threshold": threshold}
    p, r = float(curve["precision"][k]), float(curve["recall"][k])
    return {"precision": p, "recall": r, "f1": _f1(p, r), "threshold": float(s[k]) if threshold is None else threshold}


def best_threshold(curve: dict) -> dict:
    """at_threshold at the score threshold with the highest F1."""
    if not len(curve["score"]):
        return at_threshold(curve, None)
    f1 = 2 * curve["precision"] * curve["recall"] / np.maximum(curve["precision"] + curve["recall"], 1e-12)
    return at_threshold(curve, float(curve["score"][int(np.argmax(f1))]))


def per_edit(pairs: dict, origin: np.ndarray, edit: np.ndarray, threshold: float | None) -> dict:
    """{transformation: at_threshold(...)} for each transformation in edit and "all": each scored
    on the untouched items and that transformation's copies only."""
    untouched = edit == ""
    rows = {"all": at_threshold(pr_curve(pairs, origin), threshold)}
    for t in sorted(set(edit[~untouched])):
        rows[t] = at_threshold(pr_curve(pairs, origin, untouched | (edit == t)), threshold)
    return rows


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def save_text_corpus(path: Path, docs: list[list[str]]) -> None:
    """One {"key", "text"} object a line: key = the item's number."""
    with open(path, "w", encoding="utf-8") as f:
        for k, words in enumerate(docs):
            f.write(json.dumps({"key": str(k), "text": " ".join(words)}) + "\n")
