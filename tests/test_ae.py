"""The autoencoder hasher: trains on small real data (digits), beats LSH, round-trips through its
artifact, and refuses artifacts that do not match."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from semhash.hashing import artifact
from semhash.hashing.autoencoder import AEHasher
from semhash.hashing.autoencoder.bottlenecks import Bottleneck
from semhash.hashing.autoencoder.config import TrainConfig
from semhash.hashing.autoencoder.model import Autoencoder, ModelConfig
from semhash.hashing.autoencoder.numpy_encoder import NumpyAEHasher
from semhash.hashing.autoencoder.registry import BOTTLENECKS, bottleneck_class
from semhash.hashing.autoencoder.regularizers import Regularizers
from semhash.hashing.autoencoder.train import train
from semhash.hashing.baselines import LSH
from semhash.hashing.errors import ArtifactError, DataError, ParameterError
from semhash.hashing.methods import load_hasher
from semhash.hashing.metrics import evaluate, label_relevance

SMALL = dict(
    hidden=(256, 128), epochs=30, batch_size=32, val_items=200, val_database=1300, patience=20, device="cpu", threads=1
)


def map_all(hasher, train_set, test_set):
    rel = label_relevance(test_set.labels, train_set.labels)
    return evaluate(hasher.encode(test_set), hasher.encode(train_set), rel).map_all


@pytest.fixture(scope="module")
def trained(digits):
    """One 16-bit noise-bottleneck AE on digits, trained once for the module (a few seconds), in
    the recipe's batches of 256: with its affine views, 1,200 steps in batches of 32 learned too
    little (test mAP 0.20 against 0.63, measured)."""
    return AEHasher(bits=16, **{**SMALL, "epochs": None, "steps": 1200, "batch_size": 256}).fit(digits[0])


def test_training_reduces_the_loss_and_beats_lsh(trained, digits):
    train_set, test_set = digits
    losses = [h["loss"] for h in trained.training_["history"]]
    assert losses[-1] < 0.8 * losses[0]
    lsh = np.mean([map_all(LSH(16, seed=s).fit(train_set), train_set, test_set) for s in range(3)])
    assert map_all(trained, train_set, test_set) > lsh + 0.05


def test_no_dead_bits(trained, digits):
    from semhash.hashing.codes import unpack

    on = unpack(trained.encode(digits[0])).mean(axis=0)
    assert on.min() > 0.02 and on.max() < 0.98


def test_save_load_gives_identical_codes_and_a_describing_header(trained, digits, tmp_path):
    path = trained.save(tmp_path / "ae.semhash")
    again = load_hasher(path)
    assert isinstance(again, NumpyAEHasher)  # an MLP's file is read without torch (test_numpy_encoder.py)
    np.testing.assert_array_equal(again.encode(digits[1]), trained.encode(digits[1]))
    # numpy's float64 against torch's float32: equal to float32's rounding
    np.testing.assert_allclose(again.activations(digits[1]), trained.activations(digits[1]), rtol=1e-5, atol=1e-5)
    header = artifact.read_header(path)
    assert header["method"] == "ae" and header["bits"] == 16
    assert header["architecture"]["hidden"] == [256, 128] and header["architecture"]["bottleneck"] == "noise"
    assert header["input"]["fingerprint"] == digits[0].fingerprint and header["input"]["shape"] == [1, 8, 8]
    assert 0 < header["validation"]["map"] <= 1 and header["library_version"]


def test_an_artifact_with_wrong_weights_is_refused(trained, tmp_path):
    path = trained.save(tmp_path / "ae.semhash")
    tensors, header = artifact.load(path)
    header["architecture"]["hidden"] = [99, 128]  # the header no longer describes the weights
    artifact.save(
        tmp_path / "bad.semhash",
        tensors,
        {k: v for k, v in header.items() if k not in ("format", "format_version", "library_version")},
    )
    with pytest.raises(ArtifactError, match="corrupt ae model"):
        load_hasher(tmp_path / "bad.semhash")


def test_items_of_another_shape_are_refused(trained):
    with pytest.raises(DataError, match=r"item shape \(1, 28, 28\)"):
        trained.encode(np.zeros((3, 1, 28, 28), np.float32))


@pytest.mark.parametrize("method", BOTTLENECKS)
def test_every_bottleneck_encodes_exactly_binary_codes(method):
    torch.manual_seed(0)
    model = Autoencoder(ModelConfig(input_shape=(1, 8, 8), bits=16, bottleneck=method, hidden=(32,)))
    x = torch.rand(50, 1, 8, 8)
    model.train()
    _, a, h, _ = model(x)
    if method in ("ste", "bernoulli"):
        assert set(torch.unique(h.detach()).tolist()) <= {0.0, 1.0}  # hard forward, soft backward
        h.sum().backward()
        assert model.encoder[1][0].weight.grad.abs().sum() > 0
    model.eval()
    _, a, h, _ = model(x)
    if method != "real":
        assert set(torch.unique(h).tolist()) <= {0.0, 1.0}
    codes = model.activations(x) > 0
    assert codes.dtype == torch.bool and codes.shape == (50, 16)


def test_convolutional_variant_trains_on_digits(digits):
    h = AEHasher(bits=16, conv=True, **{**SMALL, "epochs": 2}).fit(digits[0].subset(400))
    assert h.encode(digits[1]).shape == (297, 2)


def test_regularizers_and_the_neighbour_term_run(digits):
    reg = Regularizers(
        mask_prob=0.2, input_noise=0.05, balance=1.0, decorrelation=1.0, sparsity=0.01, neighbours=1.0, k_neighbours=5
    )
    h = AEHasher(bits=16, reg=reg, **{**SMALL, "epochs": 2}).fit(digits[0].subset(500))
    assert len(h.training_["history"]) == 2


def test_affine_views_move_pixels_but_keep_the_image(digits):
    from semhash.hashing.autoencoder.regularizers import affine_jitter

    x = torch.from_numpy(digits[0].x[:64])
    assert torch.equal(affine_jitter(x, 0.0), x)  # strength 0: the identity
    moved = affine_jitter(x, 1.0)
    assert moved.shape == x.shape and (moved - x).abs().amax(dim=(1, 2, 3)).min() > 0  # every image moved
    assert float(moved.sum() / x.sum()) == pytest.approx(1.0, abs=0.15)  # ink kept: small transforms


def test_pairs_of_two_views_of_one_item_train(digits):
    from semhash.hashing.autoencoder.train import _partners

    nb = torch.arange(10).roll(1)[:, None].repeat(1, 3)  # every item's neighbours: the previous item
    assert _partners(nb, torch.arange(10), 0.0).tolist() == nb[:, 0].tolist()
    assert _partners(nb, torch.arange(10), 1.0).tolist() == list(range(10))
    reg = Regularizers(neighbours=40.0, k_neighbours=5, affine=1.0, self_pairs=0.5)
    h = AEHasher(bits=16, reg=reg, **{**SMALL, "epochs": 2}).fit(digits[0].subset(500))
    assert len(h.training_["history"]) == 2 and h.config()["reg"]["affine"] == 1.0


def test_the_gpus_mixed_precision_runs_the_model_in_bf16_and_the_loss_in_float32(digits, monkeypatch):
    """On CUDA the forward pass runs under bf16 autocast; binary cross-entropy refuses autocast there
    (the first GPU run failed on it). The same split on the CPU's autocast: the loss sees no autocast."""
    from semhash.hashing.autoencoder import train as train_module

    monkeypatch.setattr(train_module, "_autocast", lambda device: torch.autocast("cpu", dtype=torch.bfloat16))
    seen, loss_fn = [], train_module.loss_fn

    def checked_loss(x_hat, x, h, *args, **kwargs):
        seen.append((torch.is_autocast_enabled("cpu"), x_hat.dtype, h.dtype))
        return loss_fn(x_hat, x, h, *args, **kwargs)

    monkeypatch.setattr(train_module, "loss_fn", checked_loss)
    reg = Regularizers(neighbours=40.0, k_neighbours=5, affine=1.0)
    h = AEHasher(bits=16, reg=reg, **{**SMALL, "epochs": 2}).fit(digits[0].subset(500))
    assert seen and set(seen) == {(False, torch.float32, torch.float32)}
    assert np.isfinite([r["loss"] for r in h.training_["history"]]).all()
    model = Autoencoder(ModelConfig(input_shape=(1, 8, 8), bits=16, hidden=(32,)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_hat, _, codes, _ = model(torch.from_numpy(digits[0].x[:4]))
    assert codes.dtype == torch.bfloat16 and x_hat.dtype == torch.float32  # the output's sigmoid in float32


def test_shared_neighbours_keep_the_candidates_sharing_most_neighbours(rng):
    from semhash.hashing.autoencoder.graph import shared_neighbours

    n, p, k = 300, 12, 5
    pools = np.array([rng.choice(np.delete(np.arange(n), i), p, replace=False) for i in range(n)])
    kept = shared_neighbours(pools, k)
    for i in range(n):  # brute force: count, sort by count (nearer first among equals), take k
        shared = [len(set(pools[i]) & set(pools[j])) for j in pools[i]]
        order = sorted(range(p), key=lambda c: (-shared[c], c))
        assert kept[i].tolist() == pools[i][order[:k]].tolist()


def test_the_knn_graph_leaves_each_item_out_of_its_own_neighbours(rng):
    from semhash.hashing.autoencoder.graph import knn_graph

    x = torch.from_numpy(rng.random((200, 8), dtype=np.float32))
    x[1] = x[0]  # an exact duplicate: item 0 need not be its own nearest
    dist = torch.cdist(x, x).numpy()
    np.fill_diagonal(dist, np.inf)
    for pool in (1, 2):
        graph = knn_graph(x, Regularizers(k_neighbours=10, neighbour_pool=pool, neighbour_space="input")).numpy()
        assert graph.shape == (200, 10) and not (graph == np.arange(200)[:, None]).any()
        assert all(len(set(row)) == 10 for row in graph)
        assert 1 in graph[0] and 0 in graph[1]  # duplicates: each other's neighbours
    plain = knn_graph(x, Regularizers(k_neighbours=10, neighbour_space="input")).numpy()
    found = np.sort(np.take_along_axis(dist, plain, 1), axis=1)
    assert np.allclose(found, np.sort(dist, axis=1)[:, :10], atol=1e-5)  # pool 1: a brute-force scan's 10 nearest


def test_a_few_wide_items_get_their_graph_in_the_input_space(rng):
    """50 items or fewer span at most 49 dimensions: the graph's PCA-50 is skipped, not refused
    (wide inputs take the randomized PCA, which needs 50 items)."""
    from semhash.hashing.autoencoder.graph import knn_graph

    x = torch.from_numpy(rng.random((30, 5000), dtype=np.float32))
    graph = knn_graph(x, Regularizers(k_neighbours=5)).numpy()
    dist = torch.cdist(x, x).numpy()
    np.fill_diagonal(dist, np.inf)
    found = np.sort(np.take_along_axis(dist, graph, 1), axis=1)
    assert np.allclose(found, np.sort(dist, axis=1)[:, :5], atol=1e-3)  # a brute-force scan's 5 nearest


def test_an_items_views_count_once_among_its_neighbours():
    from semhash.hashing.autoencoder.graph import _first_distinct

    owners = np.array([[0, 3, 3, 5, 0, 7, 5, 9], [2, 1, 2, 2, 4, 1, 6, 8]])  # rows found: views of items
    assert _first_distinct(owners, np.array([0, 1]), 3).tolist() == [[3, 5, 7], [2, 4, 6]]


def test_a_graph_searched_among_views_is_seeded_and_well_formed(digits):
    from semhash.hashing.autoencoder.graph import knn_graph

    x = torch.from_numpy(digits[0].x[:300])
    reg = Regularizers(k_neighbours=8, neighbour_pool=2, affine=1.0, graph_views=3)
    graph = knn_graph(x, reg, seed=5).numpy()
    assert graph.shape == (300, 8) and not (graph == np.arange(300)[:, None]).any()
    assert all(len(set(row)) == 8 for row in graph)
    assert np.array_equal(graph, knn_graph(x, reg, seed=5).numpy())  # every rank draws the same views
    assert not np.array_equal(graph, knn_graph(x, reg, seed=6).numpy())  # other views, another graph
    plain = knn_graph(x, Regularizers(k_neighbours=8, affine=1.0, graph_views=0)).numpy()
    assert not np.array_equal(graph, plain)  # the views bring other items near


def test_features_use_mse_and_a_linear_output(rng):
    from semhash.hashing.dataset import Dataset
    from semhash.hashing.inputs.features import IDENTITY

    x = torch.from_numpy(rng.standard_normal((300, 10)).astype(np.float32) * 3)
    result = train(
        TrainConfig(bits=8, hidden=(16,), epochs=10, device="cpu", val_items=0, reg=Regularizers()),
        Dataset("feat", x, None, IDENTITY, "test"),
        progress=False,
    )
    assert result.model.cfg.output == "linear" and result.history[-1]["loss"] < result.history[0]["loss"]


def test_checkpoint_and_resume_continue_where_training_stopped(digits, tmp_path):
    ckpt = tmp_path / "run.pt"
    cfg = TrainConfig(bits=16, **{**SMALL, "epochs": 2}, checkpoint=str(ckpt))
    first = train(cfg, digits[0], progress=False)
    assert ckpt.is_file() and len(first.history) == 2
    cfg4 = TrainConfig(bits=16, **{**SMALL, "epochs": 4}, checkpoint=str(ckpt), resume=True)
    with pytest.raises(ParameterError, match="different training configuration"):
        train(cfg4, digits[0], progress=False)  # epochs differ: the old run is not this one
    again = train(
        TrainConfig(bits=16, **{**SMALL, "epochs": 2}, checkpoint=str(ckpt), resume=True), digits[0], progress=False
    )
    assert [h["epoch"] for h in again.history] == [0, 1]  # nothing left to do: history restored


def test_a_checkpoint_written_before_the_graph_options_still_resumes_its_run():
    from semhash.hashing.autoencoder.checkpoints import _run_defining

    cfg = TrainConfig(reg=Regularizers(neighbours=40.0, k_neighbours=50, affine=1.0))
    older = cfg.to_dict()
    for field in ("neighbour_pool", "graph_views"):  # fields a checkpoint of then did not have
        del older["reg"][field]
    assert _run_defining(older) == _run_defining(cfg.to_dict())
    assert _run_defining(older) != _run_defining(TrainConfig().to_dict())  # the recipe's graph: another run


def test_seeded_cpu_training_is_reproducible(digits):
    cfg = dict(bits=8, **{**SMALL, "epochs": 1})
    a = AEHasher(**cfg).fit(digits[0].subset(300)).encode(digits[1])
    b = AEHasher(**cfg).fit(digits[0].subset(300)).encode(digits[1])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(epochs=0), "epochs must be positive"),
        (dict(lr=-1.0), "learning rate"),
        (dict(bits=12), "multiple of 8"),
        (dict(lr_decay="linear"), "learning-rate decay"),
        (dict(reg=Regularizers(affine=30.0)), "views' strength"),
        (dict(reg=Regularizers(self_pairs=1.5)), "self pairs"),
        (dict(reg=Regularizers(neighbour_words=-0.5)), "neighbour's words"),
        (dict(reg=Regularizers(neighbour_pool=0)), "neighbour pool"),
        (dict(reg=Regularizers(graph_views=1000)), "graph's views"),
        (dict(reg=Regularizers(neighbour_pool=2.5)), "whole number"),
        (dict(reg=Regularizers(neighbours=1.0, k_neighbours=-3)), "neighbours per item"),
    ],
)
def test_absurd_parameters_are_refused(bad, message, digits):
    with pytest.raises(ParameterError, match=message):
        train(TrainConfig(**{**dict(bits=16, hidden=(8,)), **bad}), digits[0], progress=False)


def test_the_bottleneck_rejects_unknown_methods():
    with pytest.raises(ValueError, match="unknown bottleneck"):
        bottleneck_class("gumbel")


VARIATIONAL = ("gaussian", "nash")  # their extra loss is a KL term (hashing/autoencoder/variational.py)


@pytest.mark.parametrize("method", [name for name in BOTTLENECKS if name not in VARIATIONAL])
def test_the_registered_bottlenecks_add_no_loss_and_code_the_sign_of_the_encoder(method):
    torch.manual_seed(0)
    model = Autoencoder(ModelConfig(input_shape=(1, 8, 8), bits=16, bottleneck=method, hidden=(32,)))
    assert isinstance(model.bottleneck, Bottleneck) and model.bottleneck.width(16) == 16
    x = torch.rand(20, 1, 8, 8)
    _, a, _, extra = model(x)
    assert extra.ndim == 0 and float(extra) == 0.0 and not extra.requires_grad
    assert torch.equal(model.activations(x) > 0, model.bottleneck.code(a.detach()))


class Gaussian(Bottleneck):
    """A VDSH-style variational bottleneck, written as a new one would be: the encoder gives each bit
    a mean and a log-variance; training decodes the sigmoid of a sample and adds the KL divergence
    from N(0, 1); the code is the sign of the mean."""

    @staticmethod
    def width(bits):
        return 2 * bits

    def logits(self, a):
        return a.chunk(2, dim=1)[0]

    def relax(self, a):
        mean, log_var = a.chunk(2, dim=1)
        sample = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(1).mean()
        return torch.sigmoid(sample), kl


def test_a_new_bottleneck_is_one_class_and_one_registration_line(digits, monkeypatch, tmp_path):
    from semhash.hashing.autoencoder import train as train_module

    monkeypatch.setitem(BOTTLENECKS, "gaussian", (__name__, "Gaussian"))  # the registration line
    model = Autoencoder(ModelConfig(input_shape=(1, 8, 8), bits=16, bottleneck="gaussian", hidden=(32,)))
    _, a, h, extra = model(torch.from_numpy(digits[0].x[:50]))
    assert a.shape == (50, 32) and h.shape == (50, 16) and extra > 0 and extra.requires_grad
    seen, loss_fn = [], train_module.loss_fn

    def checked_loss(*args, extra=None, **kwargs):
        seen.append(float(extra.detach()))
        return loss_fn(*args, extra=extra, **kwargs)

    monkeypatch.setattr(train_module, "loss_fn", checked_loss)
    hasher = AEHasher(bits=16, bottleneck="gaussian", reg=Regularizers(), **{**SMALL, "epochs": 2}).fit(
        digits[0].subset(500)
    )
    assert seen and min(seen) > 0  # the loss took the KL term at every step
    assert hasher.encode(digits[1]).shape == (297, 2) and hasher.activations(digits[1]).shape == (297, 16)
    again = load_hasher(hasher.save(tmp_path / "gaussian.semhash"))
    np.testing.assert_array_equal(again.encode(digits[1]), hasher.encode(digits[1]))


def test_train_flags_change_only_the_regularizers_they_name():
    from semhash.cli.train_cmds import _ae_options

    given = {"bottleneck": "noise", "steps": None, "epochs": None, "members": None}
    options = _ae_options(given, "cpu", {"neighbours": None, "affine": 0.0}, False, None, False, 1, True)
    assert options["reg"] == {"affine": 0.0}  # `semhash train --views 0`: the rest is the input kind's recipe
    cfg = AEHasher(bits=16, **options).train_config()
    assert cfg.reg == replace(TrainConfig().reg, affine=0.0)
    assert "reg" not in _ae_options(given, "cpu", {"affine": None}, False, None, False, 1, True)
    assert "members" not in options  # not given: the recipe's
