"""Allow `python -m engine` as an alias for the `mtbench` console script."""

from engine.cli.main import run

run()
