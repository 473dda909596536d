"""The commands configs, scripts and the README name keep starting what they always started."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

from tests.support.fakeserver import REPOSITORY


def help_text(*command: str) -> str:
    done = subprocess.run(
        [sys.executable, *command, "--help"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_python_m_engine_serve_gguf_still_runs_the_llama_cpp_launcher() -> None:
    assert "--reasoning-format" in help_text("-m", "engine.serve_gguf")


def test_the_llama_cpp_launcher_names_itself_as_the_readme_does() -> None:
    assert help_text("-m", "engine.serve_gguf").startswith("usage: python -m engine.serve_gguf ")


def test_the_fake_server_starts_by_its_script_path_and_as_a_module() -> None:
    for command in (["benchmarks/fake_server.py"], ["-m", "benchmarks.fake"]):
        assert "--latency-median" in help_text(*command)


def test_every_file_and_engine_name_the_readme_gives_exists() -> None:
    readme = (REPOSITORY / "README.md").read_text()
    files = set(re.findall(r"\b(?:benchmarks|engine|tests|config|docs)/[\w./-]*\w\.\w+", readme))
    assert files and sorted(f for f in files if not (REPOSITORY / f).exists()) == []
    names = set(re.findall(r"`(engine(?:\.\w+)+)", readme))
    assert names and sorted(n for n in names if not _resolves(n)) == []


def _resolves(dotted: str) -> bool:
    """`engine.bench.thinking.answer_text`: a module, then attributes of it."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False
