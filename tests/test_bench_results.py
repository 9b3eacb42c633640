"""A benchmark without matplotlib (the [bench] extra) still succeeds: its figures go to the JSON,
and its last line says why there is no plot."""

import json

from semhash.benchmarks import results


def test_without_matplotlib_a_benchmark_writes_its_json_and_says_why_there_is_no_plot(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "can_plot", lambda: False)
    paths = results.write_result(tmp_path, "demo", {"rows": [1, 2]}, lambda path: 1 / 0)
    assert paths[1] is None and json.loads(paths[0].read_text())["rows"] == [1, 2]
    assert "no plot: matplotlib is not installed; pip install 'semhash[bench]'" in results.written(paths)
