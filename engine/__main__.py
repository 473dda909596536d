"""Allow `python -m engine` as an alias for the `mtbench` console script."""

from engine.cli import run

run()
