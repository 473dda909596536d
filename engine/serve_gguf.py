"""`python -m engine.serve_gguf`, as configs and the README have always spelt it.

The launcher lives in `engine.serving.serve_gguf`; this name only runs it.
"""

from __future__ import annotations

from engine.serving.serve_gguf import main

if __name__ == "__main__":
    raise SystemExit(main())
