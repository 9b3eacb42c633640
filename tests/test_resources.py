"""Hostile requests cost the server a refusal, not its memory: a PNG that declares 13,000 x 13,000
pixels (alone and four at once) and a 40 MB JSON body, sent to a real `semhash serve` while other
clients search; thumbnails of that PNG and of 24 MP photos in a served folder; and a
`semhash search --show` grid over them. Their timings are the benchmark's (`semhash bench
hostile`); here, what must hold."""

import json

import pytest


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    from semhash.benchmarks.bench_hostile import run

    out = tmp_path_factory.mktemp("hostile")
    result = run(items=5_000, clients=2, out=out, log=lambda line: None)
    assert json.loads((out / "hostile.json").read_text())["rows"] == result["rows"]
    return {r["case"]: r for r in result["rows"]}, result


def test_hostile_uploads_are_refused_without_the_memory_they_ask_for(hostile):
    rows, result = hostile
    for row in rows.values():
        if row["expect"] == "refused":
            assert all(400 <= s < 500 for s in row["statuses"]), row
            assert "\n" not in row["detail"] and row["detail"]
    assert result["rss_after_mb"] - result["rss_before_mb"] < 200
    assert result["client_requests"] > 0  # the well-behaved clients kept being answered


def test_a_pixel_bomb_is_refused_for_its_pixels_not_for_another_reason(hostile):
    rows, _ = hostile
    for case in (
        "png declaring 13,000 x 13,000 pixels",
        "4 such PNGs at once",
        "thumbnail of that PNG (an indexed file)",
    ):
        assert "13000x13000 pixels is more than" in rows[case]["detail"], rows[case]


def test_thumbnails_of_24_megapixel_photos_are_small_pngs_made_within_bounded_memory(hostile):
    rows, result = hostile
    answered = [r for r in rows.values() if r["expect"] == "answered"]
    assert len(answered) == 3
    for row in answered:
        assert row["statuses"] == [200] and row["detail"].startswith("image/png 256 x 171,"), row
    assert result["peak_rss_after_mb"] - result["peak_rss_before_mb"] < 100


def test_a_result_grid_over_huge_images_draws_every_hit_in_little_memory(hostile):
    _, result = hostile
    show = result["show"]
    assert show["hits"] == 22 and show["grid"][0] > 22 * 96  # one row: the query and every hit
    assert show["peak_rss_mb"] < 300, show  # no pixel bomb decoded, no torch imported
