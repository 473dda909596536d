"""Start a server through `ManagedServer` on the given event loop, print its pid, wait to be killed.

    python tests/support/serve_until_killed.py asyncio|uvloop COMMAND

A stand-in for an engine that dies while its server runs: the test SIGKILLs this process and checks
that the kernel stopped the server, whichever loop spawned it (the CLI uses uvloop, whose
subprocesses are forked by libuv rather than by Python's `subprocess`).
"""

from __future__ import annotations

import asyncio
import sys

from engine.serving.serve import ManagedServer, ServerSpec


async def serve(command: str) -> None:
    server = ManagedServer(ServerSpec(command, ready_path="/", ready_timeout=30))
    await server.start()
    print(server.pid, flush=True)
    await asyncio.sleep(600)


def main() -> None:
    loop, command = sys.argv[1:]
    if loop == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(serve(command))


if __name__ == "__main__":
    main()
