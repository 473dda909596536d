"""The `mtbench` command line, a thin client of the public API (`engine.cli.main`)."""

from engine.cli.main import main, run

__all__ = ["main", "run"]
