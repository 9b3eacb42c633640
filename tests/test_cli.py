"""The semhash command: help, version, data info, and one-line errors with a non-zero exit code."""
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def semhash(*args, env=None):
    """Run the real console entry point in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-c", "from cli.main import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_help_and_version():
    assert "data" in runner.invoke(app, ["--help"]).output
    from hashing import __version__
    out = runner.invoke(app, ["--version"])
    assert out.exit_code == 0 and out.output.strip() == f"semhash {__version__}"


def test_data_info_json_for_digits():
    out = runner.invoke(app, ["data", "info", "digits", "--json"])
    info = json.loads(out.output)
    assert info["items"] == 1500 and info["shape"] == [1, 8, 8] and len(info["classes"]) == 10


def test_data_info_human_readable_for_a_feature_file(tmp_path):
    import numpy as np
    np.save(tmp_path / "f.npy", np.ones((5, 3), np.float32))
    out = runner.invoke(app, ["data", "info", str(tmp_path / "f.npy")])
    assert out.exit_code == 0 and "items: 5" in out.output and "shape: 3" in out.output


@pytest.mark.parametrize("args, message", [
    (["data", "info", "nosuchset"], "error: unknown data set 'nosuchset'"),
    (["data", "info", "digits", "--split", "dev"], "error: unknown split 'dev'"),
    (["data", "info", "mnist", "--data-root", "/nonexistent/root", "--no-download"], "not found in /nonexistent/root"),
])
def test_errors_are_one_line_on_stderr_with_exit_code_1(args, message):
    proc = semhash(*args)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_usage_errors_exit_2_without_traceback():
    proc = semhash("data", "info")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
