"""The document autoencoder: a bag of words in, the word distribution out (multinomial), the
k-NN graph's pairs found in LSA space, and the variational bottlenecks (VDSH's Gaussian, NASH's
Bernoulli), on a small synthetic topic corpus: documents drawn from a few word distributions."""

import json

import numpy as np
import pytest

from semhash.hashing.codes import pack
from semhash.hashing.data import load_dataset
from semhash.hashing.methods import load_hasher, make_hasher, train_model
from semhash.hashing.metrics import evaluate, label_relevance

QUICK = dict(steps=300, device="cpu", threads=1, val_items=60, val_database=200)


def topic_corpus(path, n=480, topics=4, vocabulary=400, length=60, seed=0):
    """n documents, each `length` words drawn from one of `topics` sparse word distributions over
    a shared vocabulary (the same topics whatever the seed; the seed draws the documents), as a
    .jsonl of {"text", "label"} rows. Topics overlap: a 4-topic corpus of 60-word documents is
    told apart by mAP about 0.6, not 1.0."""
    words = np.array([f"word{i}" for i in range(vocabulary)])
    dists = np.random.default_rng(1234).dirichlet(np.full(vocabulary, 0.05), size=topics)  # one set of topics
    rng = np.random.default_rng(seed)  # the documents drawn from them
    with open(path, "w") as f:
        for i in range(n):
            t = i % topics
            f.write(json.dumps({"text": " ".join(rng.choice(words, length, p=dists[t])), "label": int(t)}) + "\n")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("topics")
    return topic_corpus(folder / "train.jsonl"), topic_corpus(folder / "test.jsonl", n=120, seed=1)


def _map(model_path, corpus) -> float:
    """mAP of the test documents' codes against the training documents' (same topic = relevant)."""
    model = load_hasher(model_path)
    db, q = (load_dataset(str(p), spec=model.spec_) for p in corpus)
    return evaluate(model.encode(q), model.encode(db), label_relevance(q.labels, db.labels)).map_all


def test_the_document_autoencoder_beats_lsh_on_a_topic_corpus(corpus, tmp_path):
    train_model("ae", str(corpus[0]), tmp_path / "ae.semhash", bits=16, **QUICK)
    train_model("lsh", str(corpus[0]), tmp_path / "lsh.semhash", bits=16)
    ours, lsh = _map(tmp_path / "ae.semhash", corpus), _map(tmp_path / "lsh.semhash", corpus)
    assert ours > lsh + 0.1, (ours, lsh)


@pytest.mark.parametrize("bottleneck", ["gaussian", "nash"])
def test_variational_codes_are_deterministic_at_encode_time(corpus, tmp_path, bottleneck):
    summary = train_model("ae", str(corpus[0]), tmp_path / "m.semhash", bits=16, bottleneck=bottleneck, **QUICK)
    assert summary["method"] == "ae"
    model = load_hasher(tmp_path / "m.semhash")  # the numpy encoder: no sampling at all
    q = load_dataset(str(corpus[1]), spec=model.spec_)
    first, again = model.encode(q), model.encode(q)
    np.testing.assert_array_equal(first, again)
    assert len(np.unique(first, axis=0)) >= 4  # codes that tell the 4 topics apart, not one for all


def test_a_text_recipe_comes_from_the_input_kind_and_yields_to_the_user(corpus):
    data = load_dataset(str(corpus[0]))
    from semhash.hashing import inputs

    featurized = inputs.featurized(data)
    hasher = make_hasher("ae", bits=16, steps=1, reg={"k_neighbours": 3})
    hasher.spec_ = type("Spec", (), {"kind": featurized.kind})()  # as fit() sets it
    cfg = hasher.train_config()
    recipe = inputs.get("texts").recipe
    assert cfg.bottleneck == recipe["bottleneck"] and cfg.hidden == tuple(recipe["hidden"])
    assert cfg.steps == 1 and cfg.reg.k_neighbours == 3 and cfg.reg.affine == 0.0


def test_a_document_can_be_asked_for_its_neighbours_words_too():
    import torch

    from semhash.hashing.autoencoder.losses import with_partners_words

    counts = torch.tensor([[2.0, 2.0, 0.0], [0.0, 0.0, 5.0], [0.0, 1.0, 3.0], [4.0, 0.0, 0.0]])  # pairs (0, 2), (1, 3)
    own, half, theirs = (with_partners_words(counts, share) for share in (0.0, 0.5, 1.0))
    torch.testing.assert_close(own, counts / counts.sum(1, keepdim=True))
    torch.testing.assert_close(theirs, own[[2, 3, 0, 1]])
    torch.testing.assert_close(half, (own + theirs) / 2)
    torch.testing.assert_close(half.sum(1), torch.ones(4))


def test_a_wider_latent_is_cut_to_the_codes_bits_and_read_without_torch(corpus, tmp_path):
    """latent_bits 32, one member: a 32-unit bottleneck, trained, then PCA-ITQ of its activations to 16 bits;
    the model file's numpy reader gives the trained hasher's codes, and the sign of its activations."""
    from semhash.hashing import inputs
    from semhash.hashing.autoencoder.latent_code import MEAN, PROJECTION
    from semhash.hashing.autoencoder.numpy_encoder import NumpyAEHasher

    data = load_dataset(str(corpus[0]))
    trained = make_hasher("ae", bits=16, latent_bits=32, members=1, **QUICK).fit(inputs.featurized(data))
    assert trained.model_config_.bits == 32 and trained.reduction_[PROJECTION].shape == (32, 16)
    trained.save(tmp_path / "m.semhash")
    model = load_hasher(tmp_path / "m.semhash")
    assert isinstance(model, NumpyAEHasher) and model.bits == 16
    q = load_dataset(str(corpus[1]), spec=model.spec_)
    codes = model.encode(q)
    assert codes.shape == (len(q.labels), 2)
    np.testing.assert_array_equal(codes, trained.encode(q))
    np.testing.assert_array_equal(codes, pack(model.activations(q) > 0))
    assert len(np.unique(codes, axis=0)) >= 4
    assert _map(tmp_path / "m.semhash", corpus) > 0.4
    np.testing.assert_allclose(model.reduction_[MEAN], trained.reduction_[MEAN])


def test_a_latent_code_refuses_missing_or_misshapen_tensors_and_absurd_ratios():
    from semhash.hashing.autoencoder.latent_code import MEAN, PROJECTION, split
    from semhash.hashing.errors import ParameterError

    weights = {"encoder.1.0.weight": np.zeros((4, 3))}
    reduction = {MEAN: np.zeros(32), PROJECTION: np.zeros((32, 16))}
    network, found = split({**weights, **reduction}, bits=16, latent_bits=32, units=32)
    assert set(network) == set(weights) and set(found) == {MEAN, PROJECTION}
    assert split(weights, bits=16, latent_bits=0, units=16) == (weights, None)
    with pytest.raises(ValueError, match="latent code's tensors"):
        split(weights, bits=16, latent_bits=32, units=32)  # a file that lost them
    with pytest.raises(ValueError, match="latent code's tensors"):
        split({**weights, MEAN: np.zeros(32), PROJECTION: np.zeros((32, 8))}, bits=16, latent_bits=32, units=32)
    with pytest.raises(ValueError, match="latent code's tensors"):
        split({**weights, **reduction}, bits=16, latent_bits=8, units=16)  # the latent is the code's 16 bits wide
    with pytest.raises(ValueError, match="unexpected"):
        split({**weights, **reduction}, bits=16, latent_bits=0, units=16)
    for latent in (-8, 4, 12, 1.5, True):
        with pytest.raises(ParameterError, match="latent's width"):
            make_hasher("ae", bits=16, latent_bits=latent).fit(np.random.default_rng(0).random((50, 8)))


def test_a_sparse_batch_gives_the_dense_batchs_outputs_and_gradients():
    # training reads bags of words as a sparse CSR batch (the first layer a sparse product);
    # encoding and the GPU read them dense: both must be the same function of the weights
    import scipy.sparse as sp
    import torch

    from semhash.hashing.autoencoder.model import Autoencoder, ModelConfig
    from semhash.hashing.autoencoder.sparse_rows import SparseRows

    torch.manual_seed(0)
    model = Autoencoder(
        ModelConfig(input_shape=(300,), bits=16, bottleneck="gaussian", hidden=(40, 20), output="multinomial")
    )
    model.eval()  # the code, not a sample: the two passes see the same bottleneck
    rows = SparseRows(sp.random(50, 300, density=0.05, format="csr", random_state=0, dtype=np.float32))
    idx = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])  # in any order, repeats allowed (an item and its partner)
    seen = []
    for batch in (rows[idx], rows.sparse(idx)):
        model.zero_grad()
        _, a, _, _ = model(batch)
        a.square().sum().backward()
        seen.append((a.detach(), model.encoder[1][0].weight.grad.clone()))
    (dense_a, dense_grad), (sparse_a, sparse_grad) = seen
    torch.testing.assert_close(sparse_a, dense_a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sparse_grad, dense_grad, rtol=1e-5, atol=1e-5)
    assert dense_grad.abs().sum() > 0


def test_documents_train_two_members_by_default(corpus):
    # the texts recipe: two 500-500 models of a 64-unit latent, merged side by side (members.py)
    from semhash.hashing import inputs

    trained = make_hasher("ae", bits=16, **QUICK).fit(inputs.featurized(load_dataset(str(corpus[0]))))
    assert trained.model_config_.hidden == (1000, 1000) and trained.model_config_.bits == 128
    one = make_hasher("ae", bits=16, members=1, **QUICK).fit(inputs.featurized(load_dataset(str(corpus[0]))))
    assert one.model_config_.hidden == (500, 500) and one.model_config_.bits == 64
