"""A fake OpenAI-compatible (and Anthropic Messages) server for the engine's tests and benchmarks.

The engine must be tested against what real providers do — latency, rate limits with Retry-After,
401/404, 5xx, hung and reset connections, broken bodies, judges that forget the verdict format —
over real sockets and without paying for tokens. This server does all of that on 127.0.0.1,
deterministically (same request, same answer; faults from a seeded RNG), and counts exactly what it
saw (`GET /stats`) so tests can check the engine's traffic. It is cheap per request, because the
benchmarks measure the engine's own overhead against a zero-latency instance of it.

    python -m benchmarks.fake --port 0 --latency-median 0.2 --rpm 600   # from the repository root

prints `LISTENING <port>` and serves until SIGTERM or SIGINT. Every option has a flag (see
`--help`) and can be changed while running with `POST /admin/config`; `POST /admin/reset` zeroes
the stats. `GET /stats?arrivals=full` adds each request's applied latency and body digest to its
`arrivals` entry; `?arrivals=0` leaves the list out. `POST /admin/script` makes it answer with
scripted bytes instead (see `benchmarks.fake.script`). Other modules can `build_app(options)`
instead.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Coroutine
from typing import Any

import orjson
from aiohttp import web

from .anthropic import add_anthropic_routes
from .backend import BACKEND, FakeBackend
from .openai import add_openai_routes
from .options import (
    FakeServerOptions,
    OptionsError,
    add_option_flags,
    options_from_args,
    options_to_json,
)
from .script import SCRIPT, add_script_routes

__all__ = ["FakeServerOptions", "build_app", "main", "serve"]

# MT-Bench judge prompts carry two full answers; leave room for long ones.
_MAX_BODY_BYTES = 16 * 1024 * 1024


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


def _error(message: str) -> web.Response:
    return _json({"error": {"message": message, "type": "invalid_request_error"}}, 400)


async def _health(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def _stats(request: web.Request) -> web.Response:
    arrivals = request.query.get("arrivals", "1")
    stats = request.app[BACKEND].stats
    return _json(
        stats.snapshot(with_arrivals=arrivals not in ("0", "false"), full=arrivals == "full")
    )


async def _get_config(request: web.Request) -> web.Response:
    return _json(options_to_json(request.app[BACKEND].options))


async def _post_config(request: web.Request) -> web.Response:
    try:
        updates = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _error(f"body is not JSON: {exc}")
    if not isinstance(updates, dict):
        return _error("body must be a JSON object of option names to values")
    try:
        options = request.app[BACKEND].configure(updates)
    except OptionsError as exc:
        return _error(str(exc))
    return _json(options_to_json(options))


async def _reset(request: web.Request) -> web.Response:
    request.app[BACKEND].reset()
    request.app[SCRIPT].load([])
    return _json({"status": "ok"})


def build_app(options: FakeServerOptions | None = None) -> web.Application:
    """The fake server as an aiohttp application, starting from `options` (default: defaults)."""
    app = web.Application(client_max_size=_MAX_BODY_BYTES)
    app[BACKEND] = FakeBackend(options or FakeServerOptions())
    add_openai_routes(app)
    add_anthropic_routes(app)
    add_script_routes(app)
    app.router.add_get("/health", _health)
    app.router.add_get("/stats", _stats)
    app.router.add_get("/admin/config", _get_config)
    app.router.add_post("/admin/config", _post_config)
    app.router.add_post("/admin/reset", _reset)
    return app


async def serve(options: FakeServerOptions, port: int) -> None:
    """Serve on 127.0.0.1:`port` (0: any free port), announce the port, stop on SIGTERM/SIGINT."""
    # Cancel a handler when its client disconnects, so hung requests end with the client's timeout;
    # a fake has nothing worth finishing gracefully, so shutdown does not wait for handlers.
    runner = web.AppRunner(
        build_app(options), access_log=None, handler_cancellation=True, shutdown_timeout=0.1
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    print(f"LISTENING {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _run(main_coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed, as the engine does."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coroutine)
    else:
        uvloop.run(main_coroutine)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: parse the flags and serve until told to stop."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 = any free one")
    add_option_flags(parser)
    args = parser.parse_args(argv)
    try:
        options = options_from_args(args)
    except OptionsError as exc:
        parser.error(str(exc))
    _run(serve(options, args.port))
    return 0
