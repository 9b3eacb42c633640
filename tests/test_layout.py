"""The codebase keeps the shape ARCHITECTURE.md describes: one import name, imports in layers (no
circles), short functions."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hashing", "index_store", "cli", "benchmarks")
MAX_FUNCTION_LINES = 50


def source_files():
    return [ROOT / "__init__.py", *sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))]


def test_imports_follow_the_layers_written_in_pyproject():
    lint = shutil.which("lint-imports", path=os.path.dirname(sys.executable))
    if lint is None:
        pytest.fail("import-linter is not installed (it is part of the [dev] extra)")
    proc = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_no_function_is_longer_than_fifty_lines():
    long = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_importing_everything_adds_only_the_semhash_name(tmp_path):
    modules = [
        "semhash." + ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in source_files()[1:]
        if p.stem != "__init__"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(n for n in sys.modules if n.split('.')[0] in {PACKAGES!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
