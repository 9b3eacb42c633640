"""Image signatures: a thumbnail of each pixel's darkest channel, compared at the best small
shift, crop scale and fine warp (hashing/signatures)."""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from ..errors import SkippedItems
from . import Verifier, _batched
from .registration import aligned_correlation

# --- images: a thumbnail (darkest channel), compared at the best small shift and crop scale ----
# Measured (/tmp/h2/diag.py on issue 27's planted corpora, 4,000 photos and 20,000 MNIST digits,
# each copy against its original; the earlier signature's figures in brackets):
# - A model input of THUMB pixels or fewer a side is padded, not resampled, so an integer shift of
#   an MNIST digit stays one; the correlation is taken over the overlap of the two at each shift
#   (the strip a shift brings in is nobody's picture): MNIST shifts >= 0.95: 100% [13%].
# - A crop of up to 10% a side brought back to the model's size is a zoom of up to 1.25 on each
#   axis: each side is also tried zoomed into its centre by 0.9 on either axis or both (SCALES):
#   crops >= 0.9: photos 100% [31%], MNIST 94% [34%] (0.93 and 0.86 too: 99%, at 2.5x the time).
# - Distinct pictures: the best of an original's 10 nearest others scores under 0.79 on the
#   photos; distinct MNIST digits are alike: 0.88 (median), 0.96 (99.9%), 29% of them >= 0.9.
# - The grid's best is then refined (registration.py: an affine warp by Gauss-Newton, a little
#   blur, a tone curve): copies align to ~1 where distinct digits stay apart by their shapes. On
#   the pairs the keys propose and the truth holds (/tmp/m27, 210,347 MNIST pairs), recall at
#   precision 0.99 went from 0.872 (this grid alone) to 0.978. Those pairs had the original
#   first; the bench's come either way round, and a crop scored ~0.93 against its original
#   when the crop was the one sampled (its missing margin read as its edge): the wider view is
#   the one sampled.
# - The brightened photos lost most (the mean of clipped and unclipped channels is no tone curve
#   of the original's): the darkest channel, which clips last, keeps all of them at 0.985.
# - The default threshold, 0.985, is the one whose worse F1 of the two corpora is the highest
#   (`semhash bench dedup`, every candidate scored, a887c69): at 0.98 MNIST P 0.939 R 0.973 (F1
#   0.956), photos 1.000; at 0.985 MNIST P 0.990 R 0.965 (F1 0.977), photos 1.000 (to 0.986).
# thumbnail side; its border left out (the strip a shifted copy fills with black); the largest shift
# (thumbnail pixels) tried each way; the zooms tried on each axis (the share of the side kept)
THUMB, BORDER, SHIFT = 32, 2, 4
SIDE = THUMB - 2 * BORDER
SIZE = SIDE + SHIFT  # the period of the correlation's transforms
SCALES = (1.0, 0.9)
# the zooms are tried on pairs scoring GATE to SURE at scale 1 (below GATE: no crop seen; at SURE
# a copy already, above any threshold worth using), the fine alignment on those then scoring REFINE
# to SURE (below it, 0.4% of MNIST's true pairs and most of the distinct ones)
GATE, SURE = 0.4, 0.99
REFINE = 0.85


@lru_cache(maxsize=8)
def _resize_matrix(size: int, to: int) -> np.ndarray:
    """(to, size) rows of a resize by matrix product: to fewer pixels, each the mean of the input
    it covers (an area average: point samples of a 96-pixel JPEG kept its 8x8 blocks' edges, and
    a copy at quality 40 scored 0.983); to more, linear interpolation (pixel centres aligned)."""
    if size <= to:
        return _interpolation((np.arange(to) + 0.5) * size / to - 0.5, size)
    edges = np.arange(to + 1) * size / to  # output pixel i covers input [edges[i], edges[i+1])
    left, right = np.arange(size), np.arange(size) + 1
    overlap = np.minimum(edges[1:, None], right) - np.maximum(edges[:-1, None], left)
    return (np.clip(overlap, 0, None) * to / size).astype(np.float32)


@lru_cache(maxsize=8)
def _zoom_matrix(side: int, keep: float) -> np.ndarray:
    """(side, side) a zoom into the centre: the middle `keep` of the side stretched to the whole."""
    centre = (side - 1) / 2
    return _interpolation(centre + keep * (np.arange(side) - centre), side)


def _interpolation(where: np.ndarray, size: int) -> np.ndarray:
    """(len(where), size) linear interpolation at positions `where` (pixel units, clipped)."""
    lo = np.clip(np.floor(where).astype(int), 0, size - 1)
    hi = np.clip(lo + 1, 0, size - 1)
    w = np.clip(where - lo, 0, 1)
    m = np.zeros((len(where), size), dtype=np.float32)
    np.add.at(m, (np.arange(len(where)), lo), 1 - w)
    np.add.at(m, (np.arange(len(where)), hi), w)
    return m


def _thumbnail(grey: np.ndarray) -> np.ndarray:
    """(n, H, W) -> (n, THUMB, THUMB): padded (centred, with the picture's edge mean) when it fits,
    else resampled."""
    n, h, w = grey.shape
    if h <= THUMB and w <= THUMB:
        edge = np.concatenate([grey[:, [0, -1], :].reshape(n, -1), grey[:, :, [0, -1]].reshape(n, -1)], axis=1)
        out = np.repeat(edge.mean(axis=1), THUMB * THUMB).reshape(n, THUMB, THUMB)
        top, left = (THUMB - h) // 2, (THUMB - w) // 2
        out[:, top : top + h, left : left + w] = grey
        return out
    ry, rx = _resize_matrix(h, THUMB), _resize_matrix(w, THUMB)
    return np.einsum("ah,nhw,bw->nab", ry, grey, rx)


def image_signature(x: np.ndarray) -> np.ndarray:
    """Model inputs (n, C, H, W) or (n, H, W), any scale -> (n, SIDE*SIDE) int8: a THUMB x THUMB
    thumbnail of each pixel's darkest channel, less its border, centred (brightening moves the
    mean) and scaled to +-127 (the scale cancels in the correlation; 784 bytes an item, 784 MB at
    1M). The darkest channel, not the mean: a brightened copy clips its brightest channel first,
    and a mean of clipped and unclipped channels is no tone curve of the original's (photos: 86% of
    brightened copies at correlation >= 0.98 with the mean, 100% with the darkest channel)."""
    x = np.asarray(x, dtype=np.float32)
    grey = x.min(axis=1) if x.ndim == 4 else x.reshape(len(x), *x.shape[-2:])
    t = _thumbnail(grey)[:, BORDER:-BORDER, BORDER:-BORDER].reshape(len(x), -1)
    t -= t.mean(axis=1, keepdims=True)
    peak = np.abs(t).max(axis=1, keepdims=True)
    return np.round(t * (127 / np.where(peak > 0, peak, 1))).astype(np.int8)


def _prepared(f: np.ndarray, role: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(m, SIDE, SIDE) float32 -> (spectra (m, SIZE, SIZE//2 + 1) complex64 of f padded by SHIFT
    (no wrapped-around overlap at the shifts kept), sums of f and of f**2 over the overlap at each
    shift (m, 2S+1, 2S+1)) as the pair's first (role 0) or second (role 1) thumbnail: what
    _shift_scores needs."""
    rows, cols = _overlaps()[role]
    sums = [_bilinear(rows, v, cols) for v in (f, f * f)]
    return _bilinear(_dft(SIZE, SIDE), f.astype(np.complex64), _dft(SIZE // 2 + 1, SIDE)), *sums


def _bilinear(left: np.ndarray, x: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(p, h) @ x (m, h, w) @ (q, w).T -> (m, p, q), as two matrix products over the whole batch."""
    (m, h, w), p, q = x.shape, len(left), len(right)
    t = (x.reshape(m * h, w) @ right.T).reshape(m, h, q).transpose(0, 2, 1).reshape(m * q, h) @ left.T
    return t.reshape(m, q, p).transpose(0, 2, 1)


@lru_cache(maxsize=4)
def _dft(freqs: int, length: int) -> np.ndarray:
    """(freqs, length) complex64: the first `freqs` frequencies of the discrete Fourier transform of
    period SIZE of `length` samples (zero-padded to SIZE)."""
    return np.exp(-2j * np.pi * np.outer(np.arange(freqs), np.arange(length)) / SIZE).astype(np.complex64)


@lru_cache(maxsize=1)
def _inverse() -> tuple[np.ndarray, np.ndarray]:
    """(rows (2S+1, SIZE), cols (2S+1, SIZE//2 + 1)) complex64: the inverse transform at the shifts
    kept alone, from a real signal's half spectrum (each column but 0 and SIZE/2 stands for its
    mirror too: twice its real part)."""
    d = _windows()[0] % SIZE
    half = np.arange(SIZE // 2 + 1)
    weight = np.where((half == 0) | (half == SIZE // 2), 1.0, 2.0) / SIZE**2
    rows = np.exp(2j * np.pi * np.outer(d, np.arange(SIZE)) / SIZE)
    return rows.astype(np.complex64), (weight * np.exp(2j * np.pi * np.outer(d, half) / SIZE)).astype(np.complex64)


@lru_cache(maxsize=1)
def _overlaps() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Per role, (rows, cols) (2S+1, SIDE) float32 indicators of the overlap's rows (at each dy) and
    columns (at each dx) in that thumbnail's frame: sums over the overlap as matrix products."""
    d, wa, wb = _windows()
    span = lambda lo, hi: ((np.arange(SIDE) >= lo[:, None]) & (np.arange(SIDE) < hi[:, None])).astype(np.float32)  # noqa: E731
    return tuple((span(w[0][:, 0], w[1][:, 0]), span(w[2][0], w[3][0])) for w in (wa, wb))


@lru_cache(maxsize=1)
def _windows() -> tuple[np.ndarray, ...]:
    """The shifts d tried (rows of cc: 0..SHIFT, then -SHIFT..-1) and, per (dy, dx), the overlap's
    rows and columns in the first thumbnail's frame (x + d) and in the second's (x): (lo, hi) of
    each, (2S+1, 2S+1) arrays."""
    d = np.r_[0 : SHIFT + 1, -SHIFT:0]
    dy, dx = np.meshgrid(d, d, indexing="ij")
    lo = lambda v: np.maximum(v, 0)  # noqa: E731
    hi = lambda v: SIDE + np.minimum(v, 0)  # noqa: E731
    return d, (lo(dy), hi(dy), lo(dx), hi(dx)), (lo(-dy), hi(-dy), lo(-dx), hi(-dx))


def _shift_scores(pa: tuple, pb: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(m,) the largest Pearson correlation of two sets of thumbnails (_prepared, roles 0 and 1)
    over shifts of up to SHIFT pixels each way, each taken over the overlap alone: the strip a
    shift brings in is nobody's picture, so an integer shift of the same pixels scores 1; and (m,)
    the index of that shift in _windows' (dy, dx) grid, flattened."""
    d, wa, _ = _windows()
    rows, cols = _inverse()
    sab = _bilinear(rows, pa[0] * np.conj(pb[0]), cols).real  # the cross-correlation at each shift
    n = ((wa[1] - wa[0]) * (wa[3] - wa[2])).astype(np.float32)
    (_, sa, saa), (_, sb, sbb) = pa, pb
    var = np.maximum(saa - sa * sa / n, 0) * np.maximum(sbb - sb * sb / n, 0)
    r = np.where(var > 0, (sab - sa * sb / n) / np.sqrt(np.where(var > 0, var, 1)), 0.0)
    r = r.reshape(len(r), -1)
    at = r.argmax(axis=1)
    return r[np.arange(len(r)), at], at


def _zoomed(f: np.ndarray, ky: float, kx: float, role: int) -> tuple:
    """_prepared thumbnails (m, SIDE, SIDE) zoomed into their centre by ky, kx (the share of each
    axis kept)."""
    return _prepared(_zoom_matrix(SIDE, ky) @ f @ _zoom_matrix(SIDE, kx).T, role)


def _take(p: tuple, k: np.ndarray) -> tuple:
    return tuple(v[k] for v in p)


def _distinct(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, s) rows -> (u (k, SIDE, SIDE) float32 the distinct rows, inverse (m,)): a batch's pairs
    share their items, so each is prepared once (rows compared as bytes: fast to sort)."""
    v = np.ascontiguousarray(v).reshape(len(v), -1)
    rows = v.view(np.dtype((np.void, v.shape[1] * v.itemsize))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return v[first].astype(np.float32).reshape(len(first), SIDE, SIDE), inverse.ravel()


def shifted_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(m,) the largest Pearson correlation of thumbnails a[i] and b[i] ((m, SIDE*SIDE) int8) over
    shifts of up to SHIFT pixels each way and, for pairs scoring GATE to SURE at scale 1, zooms of
    either one into its centre by SCALES on each axis; pairs then scoring REFINE to SURE are
    aligned finely from there (registration.py: a rotation, a zoom, a fraction of a pixel, a
    little blur). A copy shifted, cropped and brought back to the model's size, rotated or resized
    is the same picture. A flat thumbnail correlates 0."""
    if not len(a):
        return np.zeros(0)
    (ua, ia), (ub, ib) = _distinct(a), _distinct(b)
    pa_u, pb_u = _prepared(ua, 0), _prepared(ub, 1)
    pa, pb = _take(pa_u, ia), _take(pb_u, ib)
    best, at = _shift_scores(pa, pb)
    zoom, side = np.ones((len(best), 2), np.float32), np.zeros(len(best), np.int8)  # where `best` was met
    k = np.flatnonzero((best >= GATE) & (best < SURE))  # the others: far apart, or copies already
    if len(k):
        pa, pb = _take(pa, k), _take(pb, k)
        (za_u, ja), (zb_u, jb) = (np.unique(i[k], return_inverse=True) for i in (ia, ib))
        for ky, kx in ((ky, kx) for ky in SCALES for kx in SCALES if (ky, kx) != (1.0, 1.0)):
            za, zb = _take(_zoomed(ua[za_u], ky, kx, 0), ja.ravel()), _take(_zoomed(ub[zb_u], ky, kx, 1), jb.ravel())
            for zoomed_side, (score, where) in enumerate((_shift_scores(za, pb), _shift_scores(pa, zb))):
                better = score > best[k]
                won = k[better]
                best[won], at[won], zoom[won], side[won] = score[better], where[better], (ky, kx), zoomed_side
    r = np.flatnonzero((best >= REFINE) & (best < SURE))
    if len(r):
        warp, shift = _start(zoom[r], side[r], at[r])
        # the wider view is the one sampled, so that every pixel of the narrower falls inside it
        # (sampled the other way round, a crop's missing margin scored ~0.93 for its original)
        b_wider = (side[r] == 1)[:, None, None]
        wide, narrow = np.where(b_wider, ub[ib[r]], ua[ia[r]]), np.where(b_wider, ua[ia[r]], ub[ib[r]])
        best[r] = np.maximum(best[r], aligned_correlation(wide, narrow, warp, shift))
    return best.astype(np.float64)


def _start(zoom: np.ndarray, side: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The grid's best alignment of each pair as registration's starting warp, from the wider view
    to the narrower: the narrower's centred pixel x in the wider at centre + warp @ x + shift.
    zoom (m, 2) the share of each axis kept, side (m,) which thumbnail was zoomed (0: a, then a is
    the wider; 1: b, the wider), at (m,) the shift's index (_shift_scores)."""
    d = _windows()[0]
    moved = np.stack([d[at // len(d)], d[at % len(d)]], axis=1).astype(np.float32)  # a at x + d is b at x
    warp = np.zeros((len(at), 2, 2), np.float32)
    warp[:, 0, 0], warp[:, 1, 1] = zoom[:, 0], zoom[:, 1]
    return warp, np.where(side[:, None] == 0, zoom * moved, -zoom * moved)  # b zoomed: b at zoom (x - d) is a at x


# Candidates beside the code ball: codes of pixels miss what moves pixels (ITQ 64-bit codes: a
# 1-4 pixel shift of an MNIST digit within 12 bits of its original 3% of the time; a brightened
# photo 51%); the magnitudes of a thumbnail's low spatial frequencies ignore a shift, and once
# centred, brightening. The original among a copy's 10 nearest keys (/tmp/h2/key.py): MNIST shifts
# 99%, brightened photos 100%; crops 44-60% (the codes find the photos' crops). A crop is a zoom
# into its original: each item's key zoomed in by KEY_ZOOM also proposes its ZOOM_NEIGHBOURS
# nearest plain keys (/tmp/m27/keys.py, MNIST crops proposed: 46% plain, 97% with zoom 0.9 and 5;
# zoom 0.85: 92%). KEY_FREQ: the frequencies kept on each axis (the mean left out).
KEY_FREQ, NEIGHBOURS = 5, 10
KEY_ZOOM, ZOOM_NEIGHBOURS = 0.9, 5
# Keys are compared exactly, a block of queries against every key (KEY_CELLS products a block: 16 MB
# of scores, 32 MB of their order), up to KEY_LIMIT items a set: beyond it the products grow as n^2
# and the codes alone propose (said in a warning)
KEY_LIMIT, KEY_CELLS = 200_000, 1 << 22


def candidate_key(sig: np.ndarray) -> np.ndarray:
    """(n, SIDE*SIDE) signatures (int8, or float thumbnails) -> (n, 2*KEY_FREQ*(KEY_FREQ+1))
    float32 unit rows: the log magnitudes of the thumbnail's lowest frequencies (no mean),
    centred; near keys, near pictures up to a shift."""
    f = np.asarray(sig, np.float32).reshape(len(sig), SIDE, SIDE)
    rows = _dft(SIZE, SIDE)[np.r_[1 : KEY_FREQ + 1, SIZE - KEY_FREQ : SIZE]]
    mag = np.abs(_bilinear(rows, f.astype(np.complex64), _dft(KEY_FREQ + 1, SIDE)))
    k = np.log1p(mag.reshape(len(f), -1))
    k -= k.mean(axis=1, keepdims=True)
    return (k / np.maximum(np.linalg.norm(k, axis=1, keepdims=True), 1e-6)).astype(np.float32)


def key_pairs(sig_a: np.ndarray, sig_b: np.ndarray | None = None, floor: float | None = None):
    """Yield (qi, pos) int64 arrays: each item's NEIGHBOURS nearest candidate_key rows by dot
    product, and the ZOOM_NEIGHBOURS nearest of its key zoomed in by KEY_ZOOM (its crops); sig_b
    None: among sig_a's items, each pair once (qi < pos); else items of sig_b (qi) with items of
    sig_a (pos), either side zoomed. Nothing, with a warning, past KEY_LIMIT items a set. floor:
    unused (a key's nearest are proposed whatever their score)."""
    if max(len(sig_a), 0 if sig_b is None else len(sig_b)) > KEY_LIMIT:
        warnings.warn(
            SkippedItems(
                f"over {KEY_LIMIT:,} images: candidates from the codes alone (shifted copies, and copies "
                "among items of a crowded code, may be missed)"
            ),
            stacklevel=2,
        )
        return
    own = sig_b is None
    sig_b = sig_a if own else sig_b
    ka = _keys(sig_a)
    kb = ka if own else _keys(sig_b)
    found = [_nearest(kb, ka, NEIGHBOURS, own), _nearest(_keys(sig_b, KEY_ZOOM), ka, ZOOM_NEIGHBOURS, own)]
    if not own:  # an item of a zoomed in: b's crops of it
        found.append(_nearest(_keys(sig_a, KEY_ZOOM), kb, ZOOM_NEIGHBOURS, False)[::-1])
    qi, pos = (np.concatenate(v) for v in zip(*found))  # at most 20 a query item: 64 MB at 200,000
    if own:  # (low, high): a pair both of its items found is one
        qi, pos = np.unique(np.stack([np.minimum(qi, pos), np.maximum(qi, pos)]), axis=1)
    for start in range(0, len(qi), 1 << 20):
        yield qi[start : start + (1 << 20)], pos[start : start + (1 << 20)]


def _keys(sig: np.ndarray, zoom: float = 1.0) -> np.ndarray:
    """(n, key width) candidate keys of signatures (n, SIDE*SIDE), each thumbnail first zoomed into
    its centre by `zoom` (the share of each axis kept), in batches."""
    z = _zoom_matrix(SIDE, zoom)
    parts = []
    for k in range(0, len(sig), 50_000):
        f = np.asarray(sig[k : k + 50_000], np.float32).reshape(-1, SIDE, SIDE)
        parts.append(candidate_key(f if zoom == 1.0 else z @ f @ z.T))
    return np.concatenate(parts) if parts else np.zeros((0, 2 * KEY_FREQ * (KEY_FREQ + 1)), np.float32)


def _nearest(queries: np.ndarray, keys: np.ndarray, count: int, own: bool) -> tuple[np.ndarray, np.ndarray]:
    """(qi, pos) int64: each query row's `count` nearest key rows by dot product (own: queries
    and keys are one set's, an item never its own), in blocks of KEY_CELLS products."""
    k = min(count, len(keys) - (1 if own else 0))
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, found = max(1, KEY_CELLS // max(len(keys), 1)), []
    for start in range(0, len(queries), rows):
        c = queries[start : start + rows] @ keys.T
        if own:
            c[np.arange(len(c)), np.arange(start, start + len(c))] = -np.inf  # not its own candidate
        found.append(np.argpartition(-c, k - 1, axis=1)[:, :k].astype(np.int64))
    pos = np.concatenate(found).ravel()
    return np.repeat(np.arange(len(queries), dtype=np.int64), k), pos


IMAGES = Verifier(
    name=f"thumb{THUMB}pad-darkest/overlap-shift{SHIFT}/zoom{min(SCALES):g}",
    units="correlation",
    threshold=0.985,
    lowest=-1.0,
    highest=1.0,
    dtype="int8",
    make=image_signature,
    similarity=_batched(shifted_correlation, 1024),  # a batch's spectra: 4.5 MB each
    propose=key_pairs,
)
