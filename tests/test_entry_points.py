"""The commands configs, scripts and the README name keep starting what they always started."""

from __future__ import annotations

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
