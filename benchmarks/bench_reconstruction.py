"""The lecture's classic comparison: a deep autoencoder with a 30-dimensional real bottleneck against
PCA with 30 components, on the MNIST test set (Hinton & Salakhutdinov, Science 2006: average squared
reconstruction error per image 3.00 vs 13.87, ratio 0.22).

    semhash bench reconstruction [--epochs 45] [--dims 30] [--device auto] [--out DIR]

Both are fitted on the 60,000 training images; the error is the sum over the 784 pixels (in [0, 1])
of the squared difference, averaged over the 10,000 test images. Writes reconstruction.json and
reconstruction.png (test digits, PCA's and the AE's reconstructions).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..hashing.autoencoder.config import TrainConfig
from ..hashing.autoencoder.regularizers import Regularizers
from ..hashing.autoencoder.train import train
from ..hashing.data import load_dataset
from ..hashing.pca import principal_directions
from .results import DEFAULT_OUT, pyplot, save_figure, write_result, written

REFERENCE = {"pca_error": 13.87, "ae_error": 3.00, "ratio": 0.22}  # Hinton & Salakhutdinov 2006


def run(
    epochs: int = 45,
    dims: int = 30,
    device: str = "auto",
    data_root: str | None = None,
    out: str | Path = DEFAULT_OUT,
    log=print,
    progress: bool = True,
) -> dict:
    """Fit PCA and train the plain deep autoencoder at `dims` dimensions; write reconstruction.json
    and reconstruction.png into out and return the JSON's content."""
    train_set = load_dataset("mnist", "train", root=data_root)
    x_train, x_test = train_set.flat(), load_dataset("mnist", "test", root=data_root).flat()
    pca_rec, pca_err, pca_s = _pca(x_train, x_test, dims)
    trained = _train_ae(train_set, dims, epochs, device, progress)
    ae_rec = _reconstruct(trained.model, x_test)
    ae_err = float(((ae_rec - x_test) ** 2).sum(axis=1).mean())
    ratio = ae_err / pca_err
    log(f"average squared reconstruction error per test image ({dims} dimensions):")
    log(f"  PCA          {pca_err:7.2f}   (fit {pca_s:.1f} s)")
    log(
        f"  deep AE      {ae_err:7.2f}   "
        f"(train {trained.seconds:.0f} s on {trained.device}, {len(trained.history)} epochs)"
    )
    log(f"  ratio AE/PCA {ratio:7.3f}   (Hinton & Salakhutdinov 2006: 3.00 / 13.87 = 0.22)")
    result = {
        "dims": dims,
        "epochs": len(trained.history),
        "pca_error": pca_err,
        "ae_error": ae_err,
        "ratio": ratio,
        "train_seconds": trained.seconds,
        "device": trained.device,
        "samples_per_second": trained.samples_per_second,
        "reference": REFERENCE,
    }
    paths = write_result(out, "reconstruction", result, lambda path: plot(x_test[:10], pca_rec[:10], ae_rec[:10], path))
    log(written(paths))
    return result


def _train_ae(train_set, dims: int, epochs: int, device: str, progress: bool):
    """The plain deep autoencoder (real bottleneck of `dims`, reconstruction only), trained."""
    cfg = TrainConfig(
        bits=dims,
        bottleneck="real",
        hidden=(1000, 500, 250),
        epochs=epochs,
        batch_size=128,
        patience=epochs,
        device=device,
        val_items=0,
        reg=Regularizers(),
    )  # the plain autoencoder: reconstruction only
    return train(cfg, train_set, progress=progress)


def _pca(x_train: np.ndarray, x_test: np.ndarray, dims: int) -> tuple[np.ndarray, float, float]:
    """PCA with `dims` components fitted on x_train: x_test's reconstructions, their error, seconds."""
    t = time.perf_counter()
    mean, pcs = principal_directions(x_train, dims)
    rec = ((x_test - mean) @ pcs) @ pcs.T + mean
    seconds = time.perf_counter() - t
    return rec, float(((rec - x_test) ** 2).sum(axis=1).mean()), seconds


def _reconstruct(model, x: np.ndarray) -> np.ndarray:
    """The autoencoder's reconstructions of flat 28x28 images, in batches of 2,000."""
    with torch.no_grad():
        parts = [model(torch.from_numpy(x[i : i + 2000]).view(-1, 1, 28, 28))[0] for i in range(0, len(x), 2000)]
    return torch.cat(parts).reshape(len(x), -1).numpy()


def plot(x, pca, ae, path: Path) -> None:
    """Rows of test digits, PCA's reconstructions and the autoencoder's."""
    plt = pyplot()
    fig, axes = plt.subplots(3, len(x), figsize=(len(x) * 0.9, 3))
    for row, (name, imgs) in enumerate((("test", x), ("PCA", pca), ("deep AE", ae))):
        for i, img in enumerate(imgs):
            axes[row, i].imshow(np.clip(img.reshape(28, 28), 0, 1), cmap="gray")
            axes[row, i].axis("off")
        axes[row, 0].set_title(name, fontsize=8, loc="left")
    save_figure(fig, path)
