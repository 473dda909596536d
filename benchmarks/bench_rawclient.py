"""The yardstick of the overhead scenario: a bare aiohttp loop posting chat completions.

It does what any client must do per request and nothing else — encode a JSON body with a ~1 KB
prompt, POST it, read and decode the answer — from `concurrency` workers sharing one session, on
uvloop as the engine runs. The engine's request rate is judged against this loop's, measured
against the same fake server in the same harness run.

    python benchmarks/bench_rawclient.py --url http://127.0.0.1:PORT/v1 --requests 3200 \\
        --concurrency 176 --models 11

prints one JSON object: requests, errors, elapsed (seconds of the loop, start-up excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time

import aiohttp
import orjson

__all__ = ["blast", "main"]

PROMPT = ("Explain, step by step and with one example, how this idea works in practice. " * 13)[
    :1000
]


async def blast(url: str, requests: int, concurrency: int, models: int) -> dict[str, float]:
    """Send `requests` chat completions from `concurrency` workers; count, errors, elapsed."""
    numbers = iter(range(requests))
    errors = itertools.count()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for number in numbers:
                body = {
                    "model": f"raw-{number % models}",
                    "messages": [{"role": "user", "content": f"{number} {PROMPT}"}],
                    "max_tokens": 1024,
                    "temperature": 0.7,
                }
                async with session.post(
                    url + "/chat/completions",
                    data=orjson.dumps(body),
                    headers={"Content-Type": "application/json"},
                ) as response:
                    answer = orjson.loads(await response.read())
                if response.status != 200 or not answer["choices"][0]["message"]["content"]:
                    next(errors)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"requests": requests, "errors": next(errors), "elapsed": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bare aiohttp chat-completions loop")
    parser.add_argument("--url", required=True, help="base URL ending in /v1")
    parser.add_argument("--requests", type=int, default=3200)
    parser.add_argument("--concurrency", type=int, default=176)
    parser.add_argument("--models", type=int, default=11, help="model names to spread over")
    args = parser.parse_args(argv)
    coroutine = blast(args.url, args.requests, args.concurrency, args.models)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coroutine)
    else:
        result = uvloop.run(coroutine)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
