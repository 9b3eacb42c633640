"""Loading data the standard ways: bundled digits, torchvision's raw layout (gzip-only too), images, features."""

import gzip
import os
import stat

import numpy as np
import pytest
from PIL import Image

from semhash.hashing.data import load_dataset
from semhash.hashing.dataset import describe
from semhash.hashing.errors import DataError


def write_idx_gz(path, array):
    """An IDX file (the MNIST format), gzip-compressed."""
    magic = {3: 0x0803, 1: 0x0801}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def gz_only_mnist(tmp_path, rng):
    """A data root holding only MNIST/raw/*.gz (as ../shared/data does), made read-only."""
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx_gz(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx_gz(raw / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    raw.chmod(stat.S_IRUSR | stat.S_IXUSR)
    yield tmp_path / "root"
    raw.chmod(stat.S_IRWXU)


def test_digits_come_as_float_images_in_unit_range(digits):
    train, test = digits
    assert train.x.shape == (1500, 1, 8, 8) and len(test) == 297
    assert 0 <= float(train.x.min()) and float(train.x.max()) <= 1
    assert train.labels.tolist()[:3] == [0, 1, 2]
    assert describe(train)["class_counts"][0] > 100


def test_gzip_only_raw_files_are_extracted_into_the_cache_when_the_root_is_read_only(
    gz_only_mnist, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SEMHASH_DATA", str(gz_only_mnist))
    ds = load_dataset("mnist", "test", download=False)
    assert ds.x.shape == (10, 1, 28, 28) and ds.labels.shape == (10,)
    assert ds.extracted_from == str(gz_only_mnist / "MNIST" / "raw")
    assert sorted(os.listdir(gz_only_mnist / "MNIST" / "raw")) == sorted(
        f for f in os.listdir(gz_only_mnist / "MNIST" / "raw") if f.endswith(".gz")
    )  # root untouched
    assert (tmp_path / "cache" / "semhash" / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()
    # the same bytes as the gzip holds, scaled to [0, 1]
    with gzip.open(gz_only_mnist / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz") as f:
        pixels = np.frombuffer(f.read()[16:], np.uint8).reshape(10, 1, 28, 28)
    np.testing.assert_allclose(ds.x, pixels / 255.0, rtol=1e-6)


def test_gzip_only_raw_files_are_extracted_in_place_when_writable(tmp_path, rng):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 6), ("t10k", 4)):
        write_idx_gz(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx_gz(raw / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    assert len(load_dataset("mnist", "train", root=tmp_path, download=False)) == 6
    assert (raw / "train-images-idx3-ubyte").is_file()


def test_a_corrupt_gzip_is_one_clear_error(tmp_path, rng):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (raw / f"{name}.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot extract"):
        load_dataset("mnist", root=tmp_path, download=False)


def test_missing_data_offline_names_the_root_and_how_to_point_elsewhere(tmp_path):
    with pytest.raises(DataError, match=rf"not found in {tmp_path}.*SEMHASH_DATA"):
        load_dataset("fashion-mnist", root=tmp_path, download=False)


def test_unknown_names_and_splits(tmp_path):
    with pytest.raises(DataError, match="unknown data set 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="unknown split"):
        load_dataset("digits", split="validation")


def test_features_from_npy_and_npz(tmp_path, rng):
    x = rng.standard_normal((20, 7)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    a = load_dataset(str(tmp_path / "x.npy"), labels=tmp_path / "y.npy")
    b = load_dataset(str(tmp_path / "xy.npz"))
    assert a.shape == (7,) and a.labels.tolist() == y.tolist()
    np.testing.assert_array_equal(a.x, b.x)
    assert a.fingerprint == b.fingerprint


def test_bad_feature_files(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a readable"):
        load_dataset(str(tmp_path / "junk.npy"))
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(DataError, match=r"\(n, d\) matrix"):
        load_dataset(str(tmp_path / "cube.npy"))
    np.save(tmp_path / "x.npy", np.zeros((4, 2)))
    np.save(tmp_path / "y.npy", np.zeros(3, dtype=int))
    with pytest.raises(DataError, match=r"shape \(4,\)"):
        load_dataset(str(tmp_path / "x.npy"), labels=tmp_path / "y.npy")


def test_image_folder_with_class_subfolders(tmp_path, rng):
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (24, 20), dtype=np.uint8)).save(tmp_path / "dogs" / "big.png")
    ds = load_dataset(str(tmp_path))
    assert ds.x.shape == (7, 1, 12, 10)  # grey, every image at the first one's size
    assert ds.classes == ["cats", "dogs"] and ds.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]


def test_flat_image_folder_has_no_labels_and_rejects_non_images(tmp_path, rng):
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(tmp_path / f"{i}.jpg")
    ds = load_dataset(str(tmp_path))
    assert ds.x.shape == (2, 3, 6, 6) and ds.labels is None
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        load_dataset(str(tmp_path))


def write_cifar10(folder, rng, n=4):
    """CIFAR-10's python layout: pickled dicts of uint8 rows (n, 3072) and labels, and the class names."""
    import pickle

    folder.mkdir(parents=True)
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"):
        batch = {"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), "labels": rng.integers(0, 10, n).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))


def test_cifar10_is_read_from_its_python_batches(tmp_path, rng):
    write_cifar10(tmp_path / "cifar-10-batches-py", rng)
    train, test = (load_dataset("cifar10", split, root=tmp_path, download=False) for split in ("train", "test"))
    assert train.x.shape == (20, 3, 32, 32) and len(test) == 4 and train.classes[3] == "class3"
    import pickle

    first = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    np.testing.assert_array_equal(train.x[:4], first["data"].reshape(4, 3, 32, 32) / np.float32(255))
    assert train.labels[:4].tolist() == [int(v) for v in first["labels"]]


def test_a_planted_cifar10_batch_runs_no_code(tmp_path, rng):
    import pickle

    write_cifar10(tmp_path / "cifar-10-batches-py", rng)

    class Planted:
        def __reduce__(self):
            return (os.system, ("touch planted",))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": Planted()}))
    with pytest.raises(DataError, match="corrupt.*posix.system is not part of a CIFAR-10 batch"):
        load_dataset("cifar10", "test", root=tmp_path, download=False)
    assert not (tmp_path / "planted").exists()
