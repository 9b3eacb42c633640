"""`semhash serve --token-file` (and $SEMHASH_TOKEN): the token is read within a bound and checked
before the server starts. A file that cannot hold a token is refused in one line that names the
file and why, never the file's text; nothing is read past MAX_TOKEN_BYTES (/dev/zero ends at once)."""

import os
import subprocess
import sys

import pytest

from semhash.index_store.http.launcher import MAX_TOKEN_BYTES, read_token


def semhash_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-c", "from semhash.cli.main import main; main()", *map(str, args)],
        capture_output=True,
        timeout=60,
        env=env,
    )


def test_a_token_file_gives_its_one_word_without_the_final_newline(tmp_path):
    (tmp_path / "token").write_text("s3cret-Token_42\n")
    assert read_token(tmp_path / "token") == "s3cret-Token_42"


@pytest.mark.parametrize(
    "content, why",
    [
        (b"\xff\xfes3cret", "the token file is not UTF-8 text"),
        (b"", "the token file is empty"),
        (b" \n\t\n", "the token file holds only whitespace"),
        (b"s3cret and more\n", "the token file holds spaces, control or non-ASCII characters"),
        (b"s3cret\nsecond-line\n", "the token file holds spaces, control or non-ASCII characters"),
        ("s3cret-pässword".encode(), "the token file holds spaces, control or non-ASCII characters"),
        (b"s3cret" * 1000, f"a token file holds at most {MAX_TOKEN_BYTES:,} bytes"),
    ],
)
def test_a_file_that_holds_no_usable_token_is_one_line_without_the_token(tmp_path, content, why):
    (tmp_path / "token").write_bytes(content)
    out = semhash_cli("serve", tmp_path / "no.db", "--token-file", tmp_path / "token")
    err = out.stderr.decode()
    assert out.returncode == 1 and out.stdout == b"", err
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {tmp_path / 'token'}: ") and why in err
    assert "s3cret" not in err and "Traceback" not in err


def test_an_endless_token_file_is_refused_after_a_bounded_read():
    out = semhash_cli("serve", "no.db", "--token-file", "/dev/zero")
    assert out.returncode == 1
    assert out.stderr.decode().splitlines() == [
        f"error: /dev/zero: a token file holds at most {MAX_TOKEN_BYTES:,} bytes, and this one holds more"
    ]


@pytest.mark.parametrize("where, why", [("folder", "(Is a directory)"), ("missing", "(No such file or directory)")])
def test_a_token_file_that_cannot_be_read_is_named(tmp_path, where, why):
    (tmp_path / "folder").mkdir()
    out = semhash_cli("serve", tmp_path / "no.db", "--token-file", tmp_path / where)
    assert out.returncode == 1
    assert out.stderr.decode().splitlines() == [f"error: {tmp_path / where}: the token file cannot be read {why}"]


def test_a_blank_token_in_the_environment_is_refused_not_served(tmp_path):
    out = semhash_cli("serve", tmp_path / "no.db", env={**os.environ, "SEMHASH_TOKEN": "  \n"})
    assert out.returncode == 1 and out.stderr.decode().splitlines() == ["error: $SEMHASH_TOKEN holds only whitespace"]
