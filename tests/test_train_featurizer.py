"""`semhash train --featurizer KEY=VALUE`: the text vectorizer's options from the command line,
kept in the model file; a wrong key or value is one error line, and a kind without a featurizer
refuses them instead of ignoring them."""

from __future__ import annotations

import pytest
from test_texts import cli, corpus, write

import semhash
from semhash.hashing.errors import ParameterError


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("featurizer")
    write(folder / "docs.jsonl", corpus(120), "jsonl")
    return folder / "docs.jsonl"


def test_vectorizer_options_from_the_command_line_are_kept_in_the_model(docs, tmp_path):
    model = tmp_path / "m.semhash"
    out = cli(
        "train", "--texts", docs, "--method", "itq", "--bits", "16", "-o", model,
        "--featurizer", "vocabulary=40", "--featurizer", "ngrams=1,2", "--featurizer", "use_idf=false",
        "--featurizer", "stop_words=none",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    featurizer = semhash.load_hasher(model).spec_.featurizer
    assert featurizer.width == 40
    assert tuple(featurizer.options["ngrams"]) == (1, 2) and featurizer.options["use_idf"] is False
    assert featurizer.options["stop_words"] is None and featurizer.idf is None
    assert any(" " in w for w in featurizer.words)  # two-word terms made it into the vocabulary


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("colour=blue", "unknown text option(s) colour"),
        ("vocabulary", "--featurizer takes KEY=VALUE"),
        ("ngrams=3,1", "n-grams must be 1 <= shortest <= longest <= 5"),
        ("stop_words=french", "stop words are 'english' or none"),
    ],
)
def test_a_wrong_option_is_one_line_and_writes_no_model(docs, tmp_path, option, message):
    model = tmp_path / "m.semhash"
    out = cli("train", "--texts", docs, "--method", "itq", "--bits", "16", "-o", model, "--featurizer", option)
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and not model.exists()


def test_a_kind_without_a_featurizer_refuses_its_options(tmp_path):
    with pytest.raises(ParameterError, match="no featurizer to take vocabulary"):
        semhash.train("itq", "digits", tmp_path / "m.semhash", bits=16, featurizer={"vocabulary": 40})
