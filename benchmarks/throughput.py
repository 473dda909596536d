"""Throughput benchmarks of the engine, one command: figures, targets, PASS/FAIL, RESULTS.md.

    python benchmarks/throughput.py                        # all seven scenarios, ~7 min
    python benchmarks/throughput.py --scenario pipeline    # one scenario (repeatable)
    python benchmarks/throughput.py --quick                # scaled-down smoke run, ~30 s
    python benchmarks/throughput.py --heading "After optimisation"

Each scenario starts `fake_server.py` in its own process, writes run configs into a temp dir,
runs the engine through its public entry point (`python -m engine run|generate -c FILE`) as a
subprocess and measures its wall time and peak RSS (`wait4`), then reads the server's `/stats`.
The scenarios and their targets are in `bench_scenarios.py`; the figures are printed as a table
and, unless `--quick`, `--profile` or `--no-write`, stored as the section HEADING of
`benchmarks/RESULTS.md` (raw numbers in `benchmarks/results.json`). Exit code 1 if any figure
misses its target.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_env import BENCHMARKS, engine_revision, machine_info
from bench_html_report import QUICK_NOTE as REPORT_QUICK_NOTE
from bench_html_report import report
from bench_report import format_table, passed_all, save
from bench_scenarios import QUICK, SCENARIOS, Figure, Outcome, ScenarioError, Settings
from bench_tail import QUICK_NOTE, tail

SCENARIOS = {**SCENARIOS, "tail": tail, "report": report}
QUICK = {**QUICK, "tail": QUICK_NOTE, "report": REPORT_QUICK_NOTE}

DEFAULT_DATA = BENCHMARKS.parent.parent / "shared" / "mtbench-data"
DURATION = {
    "saturation": "3.3 min",
    "pipeline": "15 s",
    "overhead": "20 s",
    "resume": "1 min",
    "memory": "1 min",
    "tail": "1 min",
    "report": "1 min",
}


def _data_dir(flag: str | None) -> Path:
    """`--data`, else `$MTBENCH_DATA`, else ../shared/mtbench-data beside the repository."""
    data = Path(flag or os.environ.get("MTBENCH_DATA") or DEFAULT_DATA).resolve()
    if not (data / "mt_bench" / "question.jsonl").is_file():
        raise SystemExit(f"{data}: no mt_bench/question.jsonl; pass --data or set $MTBENCH_DATA")
    return data


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="--quick changes: " + "; ".join(f"{k}: {v}" for k, v in QUICK.items()),
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable; default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="scaled-down smoke version of every scenario; writes no results",
    )
    parser.add_argument(
        "--data",
        help="MT-Bench data dir (default $MTBENCH_DATA, else "
        "../shared/mtbench-data beside the repository)",
    )
    parser.add_argument(
        "--heading",
        default="Results",
        help="RESULTS.md section to (re)write (default: %(default)s)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the engine under cProfile, one DIR/<step>.prof per engine run "
        "(slows it down: the figures are then not written)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep each scenario's temp dir (configs, stores, engine output)",
    )
    return parser


def _run_scenario(name: str, args: argparse.Namespace, data: Path) -> tuple[Outcome, str]:
    """The scenario's figures, and the engine revision it ran on (the tree may change between)."""
    revision = engine_revision()
    workdir = Path(tempfile.mkdtemp(prefix=f"mtbench-bench-{name}-"))
    settings = Settings(data=data, quick=args.quick, workdir=workdir, profile=args.profile)
    started = time.monotonic()
    load = os.getloadavg()[0]  # how busy the shared machine was: context for the figures
    try:
        outcome = SCENARIOS[name](settings)
    except ScenarioError as exc:
        outcome = Outcome([Figure("could not measure", str(exc), "runs", False)])
    finally:
        if args.keep:
            print(f"  kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    outcome.raw["load_average_1min_at_start"] = load
    print(f"  {name} done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return outcome, revision


def _compile_engine() -> None:
    """Byte-compile the engine first, as `pip install` does.

    An editable checkout run with PYTHONDONTWRITEBYTECODE=1 (set on the benchmark machine) would
    otherwise recompile every engine module in every engine process, and count that as start-up.
    """
    compileall.compile_dir(str(BENCHMARKS.parent / "engine"), quiet=1)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data = _data_dir(args.data)
    _compile_engine()
    names = [name for name in SCENARIOS if name in (args.scenario or SCENARIOS)]
    date = datetime.date.today().isoformat()
    outcomes = {}
    revisions = {}
    for name in names:
        length = "quick" if args.quick else f"~{DURATION[name]}"
        print(f"{name} ({length}) ...", file=sys.stderr, flush=True)
        outcomes[name], revisions[name] = _run_scenario(name, args, data)
    print(format_table(outcomes))
    if args.quick or args.profile or args.no_write:
        return 0 if passed_all(list(outcomes.values())) else 1
    markdown, raw_json = BENCHMARKS / "RESULTS.md", BENCHMARKS / "results.json"
    save(args.heading, date, machine_info(), revisions, outcomes, markdown, raw_json)
    print(f"\nwritten: {markdown} (section {args.heading!r}), {raw_json}")
    return 0 if passed_all(list(outcomes.values())) else 1


if __name__ == "__main__":
    raise SystemExit(main())
