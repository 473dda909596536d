"""The fake OpenAI-compatible and Anthropic server the tests and benchmarks run against.

    python -m benchmarks.fake --port 0 --latency-median 0.2   # from the repository root

`build_app(options)` gives the aiohttp application itself (see `benchmarks.fake.server`).
"""

from .options import FakeServerOptions
from .server import build_app, main, serve

__all__ = ["FakeServerOptions", "build_app", "main", "serve"]
