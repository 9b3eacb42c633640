"""Members: autoencoders trained apart (seeds seed, seed + 1, ...) and kept as one model of
block-diagonal layers, whose code is PCA-ITQ of their latents side by side (members.py)."""

import numpy as np
import pytest
import torch

from semhash.hashing.autoencoder.members import merge
from semhash.hashing.autoencoder.model import Autoencoder, ModelConfig
from semhash.hashing.codes import pack
from semhash.hashing.data import load_dataset
from semhash.hashing.errors import ParameterError
from semhash.hashing.methods import load_hasher, make_hasher

QUICK = dict(steps=200, device="cpu", threads=1, val_items=60, val_database=200, hidden=(32, 16))


def _clusters(n=400, d=24, k=6, seed=0):
    """n points around k centres in d dimensions, float32, and their centre as label."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3
    labels = rng.integers(0, k, n)
    return (centres[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


def _pre_activation_output(model: Autoencoder, h: torch.Tensor) -> torch.Tensor:
    """The decoder's output before its last activation (a sigmoid for images)."""
    for layer in model.decoder[0]:
        if isinstance(layer, (torch.nn.Linear, torch.nn.ReLU)):
            h = layer(h)
    return h


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(input_shape=(30,), bits=8, bottleneck="gaussian", hidden=(12, 6), output="multinomial"),
        ModelConfig(input_shape=(30,), bits=8, bottleneck="ste", hidden=(12, 6), output="sigmoid"),
    ],
)
def test_merged_members_compute_every_members_latent_side_by_side(cfg):
    torch.manual_seed(0)
    members = [Autoencoder(cfg).eval() for _ in range(3)]
    merged = merge(members).eval()
    assert merged.cfg.bits == 24 and merged.cfg.hidden == (36, 18)
    x = torch.rand(5, 30)
    expected = torch.cat([m.activations(x) for m in members], 1)
    torch.testing.assert_close(merged.activations(x), expected)
    # the decoder reads the codes side by side and outputs the mean of the members' outputs
    codes = [m.bottleneck(m.encoder(x))[0] for m in members]
    mean = torch.stack([_pre_activation_output(m, h) for m, h in zip(members, codes)]).mean(0)
    torch.testing.assert_close(_pre_activation_output(merged, torch.cat(codes, 1)), mean)


def test_members_train_apart_and_read_as_one_model_without_torch(tmp_path):
    from semhash.hashing.autoencoder.latent_code import PROJECTION
    from semhash.hashing.autoencoder.numpy_encoder import NumpyAEHasher

    x, _ = _clusters()
    pair = make_hasher("ae", bits=16, members=2, bottleneck="ste", **QUICK).fit(x)
    assert pair.model_config_.bits == 32 and pair.model_config_.hidden == (64, 32)
    assert pair.reduction_[PROJECTION].shape == (32, 16)
    assert {r["member"] for r in pair.training_["history"]} == {0, 1}
    assert len(pair.validation_["members"]) == 2
    # the first member is the single model of the same seed, the second that of the next seed; the
    # merged model is judged on the items neither trained on
    held = []
    for seed, half in ((0, slice(0, 16)), (1, slice(16, 32))):
        alone = make_hasher("ae", bits=16, seed=seed, bottleneck="ste", **QUICK).fit(x)
        held.append(set(alone.validation_set_.val_rows))
        latent = pair.model_.activations(torch.from_numpy(x))[:, half]
        torch.testing.assert_close(latent, alone.model_.activations(torch.from_numpy(x)))
    judged = pair.validation_set_
    assert set(judged.val_rows) == held[0] & held[1]
    assert judged.criterion == "none" and "held out of all 2 members" in judged.reason  # 400 items: too few
    pair.save(tmp_path / "pair.semhash")
    model = load_hasher(tmp_path / "pair.semhash")
    assert isinstance(model, NumpyAEHasher) and model.bits == 16
    codes = model.encode(x)
    np.testing.assert_array_equal(codes, pair.encode(x))
    np.testing.assert_array_equal(codes, pack(model.activations(x) > 0))


def test_the_merged_model_is_judged_on_the_items_every_member_held_out():
    from semhash.hashing.autoencoder.config import TrainConfig
    from semhash.hashing.autoencoder.members import held_out_of_all
    from semhash.hashing.autoencoder.validation import held_out, make_validation
    from semhash.hashing.dataset import Dataset

    x, labels = _clusters(n=3000)
    configs = [TrainConfig(seed=s, val_items=600, val_database=1000) for s in (5, 6)]
    splits = [make_validation(x, labels, c) for c in configs]  # what each member's training held out
    judged = held_out_of_all(Dataset("clusters", x, labels, "none", "train"), configs[0], splits)
    every = set.intersection(*(set(held_out(len(x), c)[1]) for c in configs))
    assert set(judged.val_rows) == every and len(every) >= 50  # ~3000 * (600/3000)^2 = 120 expected
    assert sorted([*judged.val_rows, *judged.train_rows]) == list(range(len(x)))
    assert judged.criterion == "labels" and judged.n_db == 1000


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(members=0), "members must be"),
        (dict(members=9), "members must be"),
        (dict(members=1.5), "members must be"),
        (dict(members=True), "members must be"),
        (dict(members=2, bottleneck="real"), "continuous"),
        (dict(members=2, checkpoint="ckpt.pt"), "checkpoint"),
    ],
)
def test_absurd_or_unsupported_members_are_refused_before_any_training(options, message):
    with pytest.raises(ParameterError, match=message):
        make_hasher("ae", bits=16, **options).fit(_clusters(n=60)[0])


def test_a_convolutional_model_trains_alone():
    images = np.random.default_rng(0).random((60, 1, 8, 8)).astype(np.float32)
    with pytest.raises(ParameterError, match="convolutional"):
        make_hasher("ae", bits=16, members=2, conv=True).fit(images)


def test_semhash_train_takes_members(tmp_path):
    from typer.testing import CliRunner

    from semhash.cli.main import app

    out = tmp_path / "pair.semhash"
    args = ["train", "--dataset", "digits", "--limit", "300", "--bits", "16", "--steps", "60", "--members", "2"]
    result = CliRunner().invoke(app, [*args, "--device", "cpu", "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    model = load_hasher(out)
    assert model.architecture_["bits"] == 32 and model.options["members"] == 2
    assert model.encode(load_dataset("digits", "test").subset(5)).shape == (5, 2)
