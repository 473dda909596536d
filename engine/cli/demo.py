"""`mtbench demo`: SmolLM2 served by llama.cpp, a question per category, judged, then the table.

The pieces (server, endpoints, question subset) are `engine.serving.demo`'s; this runs them through
the public API like any other caller, then prints `mtbench show`'s table and how to judge for real.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.commands import run_result
from engine.cli.control import SignalControl
from engine.cli.progress_views import progress_view
from engine.run.progress import ProgressView
from engine.run.runner import RunResult
from engine.serving.demo import (
    DISCLAIMER,
    REAL_JUDGE_CONFIG,
    DemoOptions,
    demo_endpoints,
    demo_server,
    question_subset,
)

__all__ = ["cmd_demo", "run_demo"]


def cmd_demo(args: argparse.Namespace) -> int:
    from engine.api import scores_async
    from engine.report.show import format_scoreboard

    categories = tuple(args.categories.split(",")) if args.categories else None
    options = DemoOptions(
        store=Path(args.store),
        data=args.data,
        per_category=args.per_category,
        categories=categories,
        max_tokens=args.max_tokens,
    )
    control = SignalControl(resume="mtbench demo")
    progress = progress_view("quiet" if args.quiet else "auto", None)
    result = run_result(control.interrupts(lambda: run_demo(options, progress, control)))
    print(format_scoreboard(run_result(scores_async(result.store))))
    print(f"\nstore: {result.store}  (try: mtbench report --store {result.store} -o demo.html)")
    print(f"\n{DISCLAIMER}\n\n{REAL_JUDGE_CONFIG}")
    return 0 if result.ok else 1


async def demo_data_dir(flag: str | None) -> Path:
    """The usual data dir if there is one; else FastChat's files, fetched once and checked."""
    from engine.bench.data import resolve_data_dir
    from engine.bench.datafetch import fetch_data
    from engine.errors import DataError

    try:
        return resolve_data_dir(flag, None)
    except DataError:
        print("fetching FastChat's MT-Bench data files (once) ...", file=sys.stderr, flush=True)
        return (await fetch_data()).dest


async def run_demo(
    options: DemoOptions, progress: ProgressView | None, control: SignalControl
) -> RunResult:
    """Serve SmolLM2, run the question subset, judge it; the caller prints the table."""
    from engine.api import evaluate_async
    from engine.serving.serve import ManagedServer
    from engine.serving.serve_gguf import smollm2_path

    gguf = smollm2_path()
    data_dir = await demo_data_dir(options.data)
    questions = question_subset(data_dir, options)
    print(f"serving {gguf.name} with llama.cpp ...", file=sys.stderr, flush=True)
    async with ManagedServer(demo_server(options, gguf)) as base_url:
        model, judge = demo_endpoints(options, base_url)
        return await evaluate_async(
            [model],
            judge=judge,
            store=options.store,
            data=data_dir,
            questions=questions,
            progress=progress,
            control=control,
        )
