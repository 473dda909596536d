"""A model server that hands back the API key it was sent, everywhere a server's words can go.

    python tests/support/leaky_server.py --port N [--redirect-to URL]  # the leaky API
    python tests/support/leaky_server.py --port N --record FILE        # a recording target

The leaky server answers `POST /v1/chat/completions` (OpenAI) and `POST /v1/messages` (Anthropic),
JSON or SSE as asked, and picks what to do from the model string in the request:

    echo-200      an answer quoting the key (split across SSE chunks when streaming)
    echo-400/401/500   an error body quoting the key (401 for a request without a key, too)
    redirect-307/302   a redirect to --redirect-to with the key in the Location's query
    judge         a judge reply quoting the key, ending in `Rating: [[7]]`

Every answer carries the key in response headers, and every request's key is printed on stdout
(what a served model's log under servers/ would show). The recorder answers anything with 200 and
appends one JSON line per request it receives (method, path, headers, body) to FILE.
Both print `LISTENING <port>` once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["RECORDER_REPLY", "REDIRECT_BODY", "SCRIPT", "LeakyServer"]

SCRIPT = Path(__file__).resolve()
RECORDER_REPLY = "RECORDER-REPLY-must-never-be-stored"
REDIRECT_BODY = "REDIRECT-BODY-must-never-be-stored"
_STOP_SECONDS = 10.0


def _key_of(request: web.Request) -> str:
    bearer = request.headers.get("Authorization", "")
    return request.headers.get("x-api-key") or bearer.removeprefix("Bearer ")


def _echo_headers(key: str) -> dict[str, str]:
    return {"x-echo-key": key, "openai-organization": key, "request-id": f"req-{key}"}


def _completion(api: str, model: str, text: str, key: str) -> dict[str, Any]:
    if api == "anthropic":
        return {
            "id": f"msg-{key}",
            "type": "message",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 20},
        }
    return {
        "id": f"chatcmpl-{key}",
        "model": model,
        "system_fingerprint": key,
        "choices": [{"index": 0, "message": {"content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20},
    }


def _sse_events(api: str, text: str) -> list[dict[str, Any] | str]:
    """The answer cut into 7-character pieces, so the key is split across events."""
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
    if api == "anthropic":
        return [
            {"type": "message_start", "message": {"usage": {"input_tokens": 10}}},
            *(
                {"type": "content_block_delta", "delta": {"type": "text_delta", "text": piece}}
                for piece in pieces
            ),
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
            {"type": "message_stop"},
        ]
    return [
        *({"choices": [{"index": 0, "delta": {"content": piece}}]} for piece in pieces),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        "[DONE]",
    ]


async def _stream(
    request: web.Request, api: str, text: str, headers: dict[str, str]
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **headers})
    await response.prepare(request)
    for event in _sse_events(api, text):
        payload = event if isinstance(event, str) else json.dumps(event)
        await response.write(f"data: {payload}\n\n".encode())
    await response.write_eof()
    return response


def _error_body(api: str, status: int, key: str) -> dict[str, Any]:
    message = f"Incorrect API key provided: {key} (sent as Bearer {key}); status {status}"
    if api == "anthropic":
        return {"type": "error", "error": {"type": "authentication_error", "message": message}}
    return {"error": {"message": message, "type": "invalid_request_error"}}


def _api(request: web.Request) -> str:
    return "anthropic" if request.path.endswith("/messages") else "openai"


async def leaky(request: web.Request) -> web.StreamResponse:
    api = _api(request)
    body = await request.json()
    model, key = str(body.get("model")), _key_of(request)
    print(f"{request.method} {request.path} model={model} key={key}", flush=True)
    headers = _echo_headers(key)
    if not key:
        return web.json_response(_error_body(api, 401, "(none)"), status=401, headers=headers)
    if model.startswith("redirect-"):
        target = f"{request.app['redirect_to']}{request.path}?api_key={key}"
        status = int(model.split("-")[1])
        reply = _completion(api, model, REDIRECT_BODY, key)
        return web.json_response(reply, status=status, headers={**headers, "Location": target})
    if model.startswith("echo-") and model[5:8] != "200":
        status = int(model[5:8])
        return web.json_response(_error_body(api, status, key), status=status, headers=headers)
    text = f"The key I was sent is {key}; in a header that is Bearer {key}. A fine answer."
    if model.startswith("judge"):
        text = f"The assistant's key is {key}. Rating: [[7]]"
    if body.get("stream"):
        return await _stream(request, api, text, headers)
    return web.json_response(_completion(api, model, text, key), headers=headers)


async def record(request: web.Request) -> web.Response:
    line = {
        "method": request.method,
        "path": request.path_qs,
        "headers": dict(request.headers),
        "body": (await request.read()).decode("utf-8", "replace"),
    }
    with request.app["record"].open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    return web.json_response(_completion(_api(request), "recorder", RECORDER_REPLY, ""))


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": []})


def make_app(*, redirect_to: str, record_file: Path | None) -> web.Application:
    app = web.Application()
    if record_file is not None:
        app["record"] = record_file
        app.router.add_route("*", "/{tail:.*}", record)
        return app
    app["redirect_to"] = redirect_to
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", leaky)
    app.router.add_post("/v1/messages", leaky)
    return app


async def serve(port: int, app: web.Application) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"LISTENING {bound}", flush=True)
    await asyncio.Event().wait()


class LeakyServer:
    """The script in a subprocess: `url` once started; `output` (what it printed) once stopped."""

    def __init__(self, *flags: str) -> None:
        self.flags = flags
        self.url = ""
        self.output = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> LeakyServer:
        self._process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--port", "0", *self.flags],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("LISTENING "):
            self.__exit__()
            raise RuntimeError(f"leaky server did not start (said {line!r})")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self.output, _ = self._process.communicate(timeout=_STOP_SECONDS)
            self._process = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redirect-to", default="http://127.0.0.1:9")
    parser.add_argument("--record", type=Path)
    args = parser.parse_args()
    app = make_app(redirect_to=args.redirect_to, record_file=args.record)
    asyncio.run(serve(args.port, app))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
