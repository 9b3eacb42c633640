"""The image signature's correlation and keys against their definitions, computed the slow way:
Pearson's correlation over each shift's overlap, numpy's FFT, scipy's bilinear sampling; and the
fine alignment (registration.py) on copies PIL made."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from semhash.hashing.signatures import images, registration
from semhash.hashing.signatures.images import SHIFT, SIDE


def best_overlap_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """The largest Pearson correlation of a[x + d] and b[x] over the overlap, |d| <= SHIFT each way
    (a flat overlap: 0)."""
    a, b = (v.reshape(SIDE, SIDE).astype(np.float64) for v in (a, b))
    best = -np.inf
    for dy in range(-SHIFT, SHIFT + 1):
        for dx in range(-SHIFT, SHIFT + 1):
            ra, rb = slice(max(dy, 0), SIDE + min(dy, 0)), slice(max(-dy, 0), SIDE + min(-dy, 0))
            ca, cb = slice(max(dx, 0), SIDE + min(dx, 0)), slice(max(-dx, 0), SIDE + min(-dx, 0))
            x, y = a[ra, ca].ravel(), b[rb, cb].ravel()
            x, y = x - x.mean(), y - y.mean()
            norm = np.sqrt((x @ x) * (y @ y))
            best = max(best, x @ y / norm if norm > 0 else 0.0)
    return best


@pytest.mark.parametrize("m", [1, 2, 9])
def test_the_shift_score_is_the_best_correlation_over_each_overlap(monkeypatch, m):
    monkeypatch.setattr(images, "SCALES", (1.0,))  # shifts alone: the zooms are tried on top,
    monkeypatch.setattr(images, "REFINE", 2.0)  # and the fine alignment on top of them
    rng = np.random.default_rng(m)
    a = rng.integers(-127, 128, (m, SIDE * SIDE)).astype(np.int8)
    b = rng.integers(-127, 128, (m, SIDE * SIDE)).astype(np.int8)
    b[0] = np.roll(a[0].reshape(SIDE, SIDE), (2, -3), axis=(0, 1)).ravel()  # a shift: 1 on the overlap
    if m > 2:  # a flat row, and a row repeated in a batch (prepared once)
        b[-1, :SIDE] = 5
        a[-1] = a[0]
    got = images.shifted_correlation(a, b)
    assert np.allclose(got, [best_overlap_correlation(x, y) for x, y in zip(a, b)], atol=1e-5)
    assert got[0] == pytest.approx(1.0, abs=1e-5)


def test_a_flat_thumbnail_correlates_zero_and_no_pairs_give_no_scores():
    flat = np.zeros((1, SIDE * SIDE), np.int8)
    assert images.shifted_correlation(flat, flat).tolist() == [0.0]
    assert images.shifted_correlation(flat[:0], flat[:0]).shape == (0,)


def test_the_candidate_key_is_the_log_magnitude_of_numpys_low_frequencies():
    rng = np.random.default_rng(0)
    sig = rng.integers(-127, 128, (5, SIDE * SIDE)).astype(np.int8)
    size, k = SIDE + SHIFT, images.KEY_FREQ
    mag = np.abs(np.fft.rfft2(sig.reshape(5, SIDE, SIDE).astype(np.float64), (size, size)))
    want = np.log1p(mag[:, np.r_[1 : k + 1, size - k : size], : k + 1].reshape(5, -1))
    want -= want.mean(axis=1, keepdims=True)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert np.allclose(images.candidate_key(sig), want, atol=1e-5)


def test_registration_samples_as_scipys_bilinear_interpolation_with_the_edge_held():
    from scipy.ndimage import map_coordinates

    rng = np.random.default_rng(0)
    planes = [rng.random((3, SIDE, SIDE)).astype(np.float32) for _ in range(2)]
    pos = rng.uniform(-3, SIDE + 2, (3, 50, 2)).astype(np.float32)  # some beyond the frame
    got = registration._sample(planes, pos)
    for plane, values in zip(planes, got):
        for i in range(3):
            want = map_coordinates(plane[i], np.clip(pos[i], 0, SIDE - 1).T, order=1, mode="nearest")
            assert np.allclose(values[i], want, atol=1e-3)


def blocky_digit(rng) -> Image.Image:
    """A 28-pixel digit-like picture: 4-pixel blocks inside a 4-pixel blank margin, smoothed."""
    blocks = np.pad(np.kron(rng.random((5, 5)) > 0.5, np.ones((4, 4))), 4)
    return Image.fromarray((blocks * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7))


def signatures(*pictures: Image.Image) -> np.ndarray:
    return images.IMAGES.make(np.stack([np.asarray(p, np.float32)[None] / 255 for p in pictures]))


@pytest.mark.parametrize("seed", range(4))
def test_a_rotated_or_cropped_copy_aligns_past_the_threshold_where_the_grid_alone_falls_short(monkeypatch, seed):
    digit = blocky_digit(np.random.default_rng(seed))
    rotated = digit.rotate(4, resample=Image.Resampling.BILINEAR)
    cropped = digit.crop((1, 3, 25, 26)).resize((28, 28), Image.Resampling.BILINEAR)  # a zoom of 1.17-1.22
    sig = signatures(digit, rotated, cropped)
    refined = images.IMAGES.similarity(sig[[0, 0]], sig[[1, 2]])
    monkeypatch.setattr(images, "REFINE", 2.0)
    grid = images.IMAGES.similarity(sig[[0, 0]], sig[[1, 2]])
    assert (refined >= images.IMAGES.threshold).all() and (grid < images.IMAGES.threshold).all()
    assert (refined >= grid).all()


def test_distinct_pictures_stay_below_the_threshold_however_they_are_aligned():
    rng = np.random.default_rng(7)
    sig = signatures(*(blocky_digit(rng) for _ in range(120)))
    a, b = np.triu_indices(len(sig), 1)
    assert images.IMAGES.similarity(sig[a], sig[b]).max() < images.IMAGES.threshold


def test_a_warp_that_strays_from_a_copys_is_not_kept():
    rng = np.random.default_rng(3)
    a = rng.random((2, SIDE, SIDE)).astype(np.float32)
    shrink = np.stack([np.eye(2), 0.3 * np.eye(2)]).astype(np.float32)  # the second: a zoom of 3.3
    got = registration.aligned_correlation(a, a.copy(), shrink, np.zeros((2, 2), np.float32))
    assert got[0] == pytest.approx(1.0, abs=1e-4) and got[1] == -1.0


def proposed(pairs) -> set[tuple[int, int]]:
    return {(int(q), int(p)) for qi, pos in pairs for q, p in zip(qi, pos)}


def test_the_keys_propose_a_crop_by_its_originals_key_zoomed_in(monkeypatch):
    rng = np.random.default_rng(11)
    digits = [blocky_digit(rng) for _ in range(300)]
    crops = [d.crop((2, 2, 25, 25)).resize((28, 28), Image.Resampling.BILINEAR) for d in digits[:20]]  # zoom 1.22
    sig = signatures(*digits, *crops)  # crop k of digit k is item 300 + k
    planted = {(k, 300 + k) for k in range(20)}
    assert planted <= proposed(images.key_pairs(sig))
    originals, copies = sig[:300], sig[300:]
    assert all((k, k) in proposed(images.key_pairs(originals, copies)) for k in range(20))  # (b's, a's)
    assert all((k, k) in proposed(images.key_pairs(copies, originals)) for k in range(20))  # either side zoomed
    monkeypatch.setattr(images, "ZOOM_NEIGHBOURS", 0)  # the plain keys alone miss most of them
    assert len(planted & proposed(images.key_pairs(sig))) < 10


def test_a_brightened_colour_photo_stays_a_copy_where_its_clipped_channels_would_part_the_means():
    from PIL import ImageEnhance

    from semhash.benchmarks.pictures import picture
    from semhash.hashing.inputs.images import to_array

    rng = np.random.default_rng(3)
    photos = [picture(rng, 320, 240) for _ in range(12)]
    bright = [ImageEnhance.Brightness(p).enhance(1.5) for p in photos]  # each channel clipped at 255
    x = np.stack([to_array(p, (32, 32), False) for p in photos + bright])  # (24, 3, 32, 32)
    pair = np.arange(12), np.arange(12, 24)
    darkest = images.IMAGES.make(x)
    means = images.IMAGES.make(x.mean(axis=1))  # the grey of the mean of the channels, for contrast
    assert (images.IMAGES.similarity(darkest[pair[0]], darkest[pair[1]]) >= images.IMAGES.threshold).all()
    assert (images.IMAGES.similarity(means[pair[0]], means[pair[1]]) < images.IMAGES.threshold).any()


def test_a_cropped_photo_is_its_originals_copy_whichever_comes_first():
    from semhash.benchmarks.pictures import picture
    from semhash.hashing.inputs.images import to_array

    rng = np.random.default_rng(4)
    photos = [picture(rng, 320, 240) for _ in range(12)]
    crops = [p.crop((24, 18, 296, 222)) for p in photos]  # 7.5% off each side: a zoom of 1.18
    sig = images.IMAGES.make(np.stack([to_array(p, (32, 32), False) for p in photos + crops]))
    original, crop = np.arange(12), np.arange(12, 24)
    assert (images.IMAGES.similarity(sig[original], sig[crop]) >= images.IMAGES.threshold).all()
    assert (images.IMAGES.similarity(sig[crop], sig[original]) >= images.IMAGES.threshold).all()
