"""`semhash bench search|train` on small sizes: tables, ratios, JSON and PNG, ours beside the peers."""

import json

import numpy as np
from typer.testing import CliRunner

from semhash.cli.main import app

runner = CliRunner()


def test_bench_search_measures_ours_and_faiss_and_writes_json_and_png(tmp_path):
    out = runner.invoke(app, ["bench", "search", "--n", "3000", "--no-mnist", "--out", str(tmp_path), "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result == json.loads((tmp_path / "search.json").read_text())
    qps = result["speed"][0]["qps"]
    assert {"semhash radius2", "faiss-hash radius2", "semhash knn10", "faiss-flat knn10"} <= set(qps)
    assert all(v > 0 for v in qps.values())
    assert result["ratios"]["radius2 32 bits: semhash / faiss-hash"] > 0
    assert [r["n"] for r in result["scaling"]] == [3000] and result["bulk"]["n"] == 3000
    assert (tmp_path / "search.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_train_times_every_method_on_the_same_data(tmp_path):
    out = runner.invoke(
        app,
        [
            "bench",
            "train",
            "--dataset",
            "digits",
            "--bits",
            "16",
            "--ae-epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "fit itq" not in out.output and "fit ae / itq" in out.output
    result = json.loads((tmp_path / "train.json").read_text())
    assert [r["method"] for r in result["rows"]] == ["lsh", "pcah", "itq", "ae"]
    ae = result["rows"][-1]
    assert ae["device"] == "cpu" and ae["epochs"] == 1 and ae["fit_s"] > 0 and ae["encode_items_per_s"] > 0
    assert result["items"] == 1500 and (tmp_path / "train.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_serve_loads_a_real_server_and_compares_with_in_process(tmp_path):
    out = runner.invoke(
        app,
        [
            "bench",
            "serve",
            "--items",
            "2000",
            "--clients",
            "4",
            "--seconds",
            "1",
            "--workers",
            "1",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    http = result["http"][0]
    assert http["workers"] == 1 and http["errors"] == 0 and http["requests"] > 0 and http["qps"] > 0
    assert http["p50_ms"] <= http["p99_ms"] and result["in_process"]["qps"] > 0
    assert http["ratio_to_in_process"] == http["qps"] / result["in_process"]["qps"]
    assert (tmp_path / "serve.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_quality_reads_a_labelled_corpus_of_documents(tmp_path):
    """Any labelled corpus (`--texts FILE`): no test split, so random documents are held out as the
    queries, and every method is scored on the same TF-IDF, P@100 beside mAP."""
    rng = np.random.default_rng(0)
    topics = [[f"w{t}x{i}" for i in range(30)] for t in range(3)]
    with open(tmp_path / "docs.jsonl", "w") as f:
        for i in range(600):
            words = rng.choice(topics[i % 3], size=40)
            f.write(json.dumps({"text": " ".join(words), "label": f"topic{i % 3}"}) + "\n")
    args = ["bench", "quality", "--texts", str(tmp_path / "docs.jsonl"), "--bits", "16", "--queries", "40"]
    out = runner.invoke(app, [*args, "--method", "itq", "--method", "lsh", "--out", str(tmp_path), "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads((tmp_path / "quality.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["itq", "lsh"]
    itq = rows[0]["report"]
    assert itq["queries"] == 40 and itq["database"] == 560
    assert itq["precision_at_100"] > 0.9  # three topics that share no word: PCA-ITQ separates them
