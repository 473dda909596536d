"""mtbench-engine: MT-Bench for many models at once, judged FastChat's way, everything cached."""

__version__ = "0.1.0"
