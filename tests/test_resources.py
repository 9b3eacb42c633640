"""Hostile requests cost the server a refusal, not its memory: a PNG that declares 13,000 x 13,000
pixels (alone and four at once) and a 40 MB JSON body, sent to a real `semhash serve` while other
clients search. Their timings are the benchmark's (`semhash bench hostile`); here, what must hold."""

import json


def test_hostile_uploads_are_refused_without_the_memory_they_ask_for(tmp_path):
    from semhash.benchmarks.bench_hostile import run

    result = run(items=5_000, clients=2, out=tmp_path, log=lambda line: None)
    for row in result["rows"]:
        assert all(400 <= s < 500 for s in row["statuses"]), row
        assert "\n" not in row["detail"] and row["detail"]
    assert result["rss_after_mb"] - result["rss_before_mb"] < 200
    assert result["client_requests"] > 0  # the well-behaved clients kept being answered
    assert json.loads((tmp_path / "hostile.json").read_text())["rows"] == result["rows"]
