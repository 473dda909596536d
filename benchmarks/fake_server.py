"""`python benchmarks/fake_server.py`: the fake server (`benchmarks.fake`) started by its path.

The same as `python -m benchmarks.fake` from the repository root; flags as `--help` lists them.
"""

from __future__ import annotations

from fake import main

if __name__ == "__main__":
    raise SystemExit(main())
