"""An MLP autoencoder's model file is read without torch: load_hasher gives a NumpyAEHasher whose
codes are torch's AEHasher's, for every registered bottleneck, on real MNIST and random inputs;
read-only commands with such a model import no torch. A conv model, or a bottleneck whose code
rule only torch computes, is read by torch."""

import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from semhash.hashing.autoencoder import AEHasher
from semhash.hashing.autoencoder.bottlenecks import Bottleneck
from semhash.hashing.autoencoder.code_rules import MeanCode, SignCode
from semhash.hashing.autoencoder.model import Autoencoder, ModelConfig
from semhash.hashing.autoencoder.numpy_encoder import KNOWN_FIELDS, NumpyAEHasher, mlp_shapes
from semhash.hashing.autoencoder.registry import BOTTLENECKS, bottleneck_class, code_rule
from semhash.hashing.autoencoder.regularizers import Regularizers
from semhash.hashing.codes import unpack
from semhash.hashing.data import load_dataset
from semhash.hashing.methods import load_hasher

QUICK = dict(hidden=(64, 32), steps=40, batch_size=128, val_items=200, val_database=500, device="cpu", threads=1)
# float32 logits within this fraction of an item's largest |logit| of 0: no float32 computation
# decides their sign (torch's own changes with the batch size there, README.md)
UNDECIDED = 1e-4


def same_codes(torch_hasher: AEHasher, numpy_hasher: NumpyAEHasher, x: np.ndarray) -> int:
    """Assert the two give the same bits but where the sign is undecided; the undecided bits."""
    logits = numpy_hasher.activations(x)
    undecided = np.abs(logits) <= UNDECIDED * np.abs(logits).max(axis=1, keepdims=True)
    ours, theirs = unpack(numpy_hasher.encode(x)), unpack(torch_hasher.encode(x))
    assert np.array_equal(ours[~undecided], theirs[~undecided])
    np.testing.assert_allclose(logits, torch_hasher.activations(x), rtol=0, atol=UNDECIDED * np.abs(logits).max())
    return int(undecided.sum())


@pytest.fixture(scope="module")
def mnist_test(mnist):
    """The whole MNIST test split: 10,000 images (the mnist fixture skips without the files)."""
    return load_dataset("mnist", "test", download=False)


@pytest.fixture(
    scope="module", params=[(b, bits) for bits in (16, 32, 64) for b in BOTTLENECKS], ids=lambda p: f"{p[0]}{p[1]}"
)
def pair(request, mnist, tmp_path_factory):
    """(AEHasher, the NumpyAEHasher its file gives): a few steps on 1,000 MNIST images."""
    bottleneck, bits = request.param
    trained = AEHasher(bits=bits, bottleneck=bottleneck, reg=Regularizers(), **QUICK).fit(mnist[0].subset(1000))
    read = load_hasher(trained.save(tmp_path_factory.mktemp("ae") / f"{bottleneck}{bits}.semhash"))
    assert isinstance(read, NumpyAEHasher)
    return trained, read


def test_codes_are_torchs_on_the_mnist_test_set(pair, mnist_test):
    undecided = same_codes(*pair, mnist_test)
    assert undecided <= 0.001 * len(mnist_test) * pair[0].bits  # equality, not a vacuous pass


@settings(max_examples=10, deadline=None)
@given(scale=st.sampled_from([1e-3, 1.0, 1e3]), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300))
def test_codes_are_torchs_on_random_inputs(pair, scale, seed, n):
    x = (np.random.default_rng(seed).standard_normal((n, 1, 28, 28)) * scale).astype(np.float32)
    same_codes(*pair, x)


def test_one_item_alone_gets_the_code_it_gets_in_a_batch(pair, mnist_test):
    read, x = pair[1], mnist_test.x[:300]
    alone = np.concatenate([read.encode(x[i : i + 1]) for i in range(len(x))])
    assert np.array_equal(alone, read.encode(x))


def test_the_hasher_contract_holds(pair, tmp_path):
    trained, read = pair
    assert read.bits == trained.bits and read.spec_ == trained.spec_ and read.config() == trained.config()
    assert read.summary()["validation"] == pytest.approx(trained.summary()["validation"])
    with pytest.raises(Exception, match="item shape"):
        read.encode(np.zeros((2, 1, 8, 8), np.float32))
    again = load_hasher(read.save(tmp_path / "again.semhash"))
    assert np.array_equal(again.encode(np.ones((3, 1, 28, 28))), read.encode(np.ones((3, 1, 28, 28))))
    with pytest.raises(Exception, match="only encodes"):
        read.fit(np.zeros((4, 1, 28, 28), np.float32))


@pytest.mark.parametrize("arch", [dict(), dict(input_shape=(3, 8, 8), bits=16, hidden=(32,)), dict(hidden=())])
def test_the_expected_weights_are_the_models(arch):
    cfg = ModelConfig(**arch)
    model = Autoencoder(cfg)
    assert mlp_shapes(cfg.to_dict()) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_the_reader_knows_every_field_of_the_architecture():
    # a new ModelConfig field may change the encoder: numpy_encoder.KNOWN_FIELDS is then to be
    # updated once the numpy forward pass computes it (until then torch reads such files)
    assert KNOWN_FIELDS == {f.name for f in fields(ModelConfig)}


def test_every_registered_bottleneck_declares_its_registered_code_rule():
    for name in BOTTLENECKS:
        assert code_rule(name) is not None and bottleneck_class(name).code_rule is code_rule(name)
    assert code_rule("noise") is SignCode and code_rule("gaussian") is MeanCode  # the mean's sign


class Halves(Bottleneck):
    """A bottleneck whose code is the sign of the first half of its inputs, with no code rule
    declared: only torch computes its code."""

    @staticmethod
    def width(bits):
        return 2 * bits

    def logits(self, a):
        return a[:, : a.shape[1] // 2]

    def relax(self, a):
        return torch.sigmoid(self.logits(a)), a.new_zeros(())


def test_a_bottleneck_without_a_code_rule_is_read_by_torch(digits, monkeypatch, tmp_path):
    assert Halves.code_rule is None  # redefined its code, declared no rule
    monkeypatch.setitem(BOTTLENECKS, "halves", (__name__, "Halves"))
    trained = AEHasher(bits=16, bottleneck="halves", reg=Regularizers(), **{**QUICK, "steps": 5}).fit(digits[0])
    read = load_hasher(trained.save(tmp_path / "halves.semhash"))
    assert type(read) is AEHasher and np.array_equal(read.encode(digits[1]), trained.encode(digits[1]))
    monkeypatch.setitem(BOTTLENECKS, "halves", (__name__, "Halves", SignCode))  # a rule it does not declare
    with pytest.raises(ValueError, match="registered with code rule SignCode"):
        bottleneck_class("halves")


def test_a_convolutional_model_is_read_by_torch(digits, tmp_path):
    trained = AEHasher(bits=16, conv=True, reg=Regularizers(), **{**QUICK, "steps": 5}).fit(digits[0])
    assert type(load_hasher(trained.save(tmp_path / "conv.semhash"))) is AEHasher


PROBE = """
import sys, io, contextlib
sys.argv = ["semhash", *sys.argv[1:]]
from semhash.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, exc.code
print("imported:", *(m for m in ("torch", "sqlalchemy") if m in sys.modules))
"""


@pytest.fixture(scope="module")
def ae_index(tmp_path_factory, digits):
    """A folder of 100 digit images, an MLP autoencoder's model of them and their index."""
    where = tmp_path_factory.mktemp("ae_index")
    (where / "images").mkdir()
    for i, pixels in enumerate(digits[0].x[:100]):
        Image.fromarray((pixels[0] * 255).astype(np.uint8)).save(where / "images" / f"{i}.png")
    commands = (
        ["train", "--images", "images", "--method", "ae", "--bits", "16", "--steps", "20", "-o", "m.semhash"],
        ["index", "build", "idx.db", "--model", "m.semhash", "--images", "images"],
    )
    for args in commands:
        proc = subprocess.run(
            [sys.executable, "-c", "from semhash.cli.main import main; main()", *args], cwd=where, capture_output=True
        )
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return where


@pytest.mark.parametrize(
    "args",
    [
        ["search", "idx.db", "--image", "images/0.png"],
        ["encode", "--model", "m.semhash", "--image", "images/0.png"],
        ["dedup", "idx.db", "--radius", "0"],
    ],
)
def test_read_only_commands_with_an_autoencoder_import_no_torch(ae_index, args):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ae_index)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "imported:"
