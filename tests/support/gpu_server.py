"""A fake model server that records the GPUs it was given and the requests it answered.

    env PYTHONPATH=REPOSITORY python -m tests.support.gpu_server EVENTS.jsonl CHECKPOINT \
        --gpus {gpus} --num-gpus {num_gpus} --port {port} [fake server flags]

(`COMMAND` is that command's start, ready for a serve template.) Appends to EVENTS.jsonl a
"start" line (checkpoint, pid, host, its CUDA_VISIBLE_DEVICES, the `--gpus`/`--num-gpus` it was
given, time) once it listens, and a "stop" line with the chat requests it answered, so a test can
check which GPUs each server of a sweep saw, that no two servers shared them at once, and that a
model's replicas all took requests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from benchmarks.fake import build_app
from benchmarks.fake.options import add_option_flags, options_from_args
from tests.support.served_fake import record_event

REPOSITORY = Path(__file__).resolve().parents[2]
COMMAND = (
    f"env PYTHONPATH={shlex.quote(str(REPOSITORY))} {shlex.quote(sys.executable)} "
    "-m tests.support.gpu_server"
)


async def serve(args: argparse.Namespace) -> None:
    events, checkpoint = Path(args.events), args.checkpoint
    answered = 0

    @web.middleware
    async def count(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        nonlocal answered
        if request.method == "POST" and request.path.endswith("/chat/completions"):
            answered += 1
        return await handler(request)

    app = build_app(options_from_args(args))
    app.middlewares.append(count)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    record_event(
        events,
        "start",
        checkpoint,
        pid=os.getpid(),
        host=socket.gethostname(),
        cuda=os.environ.get("CUDA_VISIBLE_DEVICES"),
        gpus=args.gpus,
        num_gpus=args.num_gpus,
        port=args.port,
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        record_event(events, "stop", checkpoint, pid=os.getpid(), requests=answered)
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("events")
    parser.add_argument("checkpoint")
    parser.add_argument("--gpus", default="")
    parser.add_argument("--num-gpus", default="")
    parser.add_argument("--port", type=int, required=True)
    add_option_flags(parser)
    args = parser.parse_args()
    if "broken" in args.checkpoint:
        print(f"error: cannot load checkpoint {args.checkpoint}: bad magic number", flush=True)
        return 3
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
