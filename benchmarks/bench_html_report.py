"""The `report` scenario: the HTML report of a 50-checkpoint sweep, its size and its load time.

A store of 50 models (`step-100` ... `step-5000`), each with real answers to all 80 questions
(the published MT-Bench answers of the 31 leaderboard models, in turn) and a single-mode judge
reply per turn of realistic length and wording (another model's answer to the same turn, cut to
about 1,000 characters, then `Rating: [[n]]`), imported as FastChat files. `mtbench report` writes
it with its texts and with `--no-texts`, and a 1-model store's report is written the same way;
headless Chromium (as the browser tests run it) opens each file until the page says it is ready
(first question drawn), three times, and switches to another question. Figures are ratios within
this run where they can be: the report's size against the same texts embedded as plain JSON (as
reports were before they were packed), and its load time against a 1-model report's; the load
time's target is absolute (2 s), as a user waits for it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_env import run_timed
from bench_scenarios import Outcome, ScenarioError, Settings
from chromium import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS

__all__ = ["QUICK_NOTE", "report"]

QUICK_NOTE = "10 checkpoints instead of 50"
CHECKPOINTS = 50
JUDGE_REPLY_CHARS = 1000
LOADS = 3
SWITCH_SCRIPT = """
const done = arguments[arguments.length - 1];
const started = performance.now();
window.location.hash = "#q-" + arguments[0];
const title = "Question " + arguments[0] + " ";
(function check() {
  const heading = document.querySelector("#question-view h3");
  if (heading && heading.textContent.startsWith(title)) done(performance.now() - started);
  else setTimeout(check, 1);
})();
"""


def _published(data: Path) -> list[dict[int, list[str]]]:
    """Each published model's turns by question id, in file-name order."""
    models = []
    for path in sorted((data / "published_pregenerated" / "mt_bench" / "model_answer").iterdir()):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        models.append({row["question_id"]: row["choices"][0]["turns"] for row in rows})
    return models


def _fastchat_files(folder: Path, sources: list[dict[int, list[str]]], count: int) -> None:
    (folder / "model_answer").mkdir(parents=True)
    (folder / "model_judgment").mkdir()
    judgments = []
    for k in range(count):
        model = f"step-{(k + 1) * 100}"
        answers, critic = sources[k % len(sources)], sources[(k + 7) % len(sources)]
        lines = [
            {"question_id": q, "model_id": model, "choices": [{"index": 0, "turns": turns}]}
            for q, turns in sorted(answers.items())
        ]
        _write(folder / "model_answer" / f"{model}.jsonl", lines)
        for q, turns in sorted(answers.items()):
            for turn in range(1, len(turns) + 1):
                judgments.append(_judgment(model, q, turn, critic.get(q, turns)))
    _write(folder / "model_judgment" / "gpt-4_single.jsonl", judgments)


def _judgment(model: str, question: int, turn: int, critic: list[str]) -> dict[str, Any]:
    score = 1 + hashlib.sha256(f"{model} {question} {turn}".encode()).digest()[0] % 10
    words = critic[min(turn, len(critic)) - 1][:JUDGE_REPLY_CHARS]
    return {
        "question_id": question,
        "model": model,
        "judge": ["gpt-4", "single-v1-multi-turn" if turn == 2 else "single-v1"],
        "user_prompt": "[Instruction] Please act as an impartial judge ...",
        "judgment": f"The assistant's answer, compared with a careful reply: {words}\n\n"
        f"Rating: [[{score}]]",
        "score": score,
        "turn": turn,
        "tstamp": 0.0,
    }


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _mtbench(workdir: Path, name: str, *argv: str) -> float:
    """Run `python -m engine ARGV`; its wall seconds (a failure ends the scenario)."""
    process = run_timed([sys.executable, "-m", "engine", *argv], workdir, name)
    if process.returncode != 0:
        raise ScenarioError(f"{name}: exited {process.returncode}: {process.stderr[-300:]}")
    return process.wall


def _store(settings: Settings, sources: list[dict[int, list[str]]], count: int) -> Path:
    folder = settings.workdir / f"fastchat-{count}"
    _fastchat_files(folder, sources, count)
    store = settings.workdir / f"sweep-{count}.sqlite"
    data = str(settings.data)
    _mtbench(settings.workdir, f"import-{count}", "import", "--store", str(store),
             "--fastchat", str(folder), "--data", data)  # fmt: skip
    return store


def _plain_size(page: Path) -> int:
    """The page's size with its packed question texts embedded as plain JSON instead."""
    from engine.report.packing import unpack

    text = page.read_text()
    start = text.index('id="report-data">') + len('id="report-data">')
    end = text.index("</script>", start)
    payload = json.loads(text[start:end])
    packed = sum(len(value) for value in payload["questionTexts"].values())
    plain = sum(
        len(json.dumps(unpack(value), ensure_ascii=False).encode())
        for value in payload["questionTexts"].values()
    )
    return page.stat().st_size - packed + plain


def _browser(profile: str) -> Any:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise ScenarioError("selenium is not installed: pip install -e '.[test]'") from None
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def _load_seconds(driver: Any, page: Path) -> float:
    """Median seconds from navigation to the page's `data-ready` (first question drawn)."""
    times = []
    for _ in range(LOADS):
        driver.get("about:blank")
        started = time.perf_counter()
        driver.get(page.as_uri())
        while not driver.execute_script("return document.body.dataset.ready === '1'"):
            if time.perf_counter() - started > 120:
                raise ScenarioError(f"{page.name}: not ready after 120 s")
            time.sleep(0.005)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _switch_ms(driver: Any, page: Path, question: int) -> float:
    _load_seconds(driver, page)
    driver.set_script_timeout(60)
    return float(driver.execute_async_script(SWITCH_SCRIPT, question))


def report(settings: Settings) -> Outcome:
    count = 10 if settings.quick else CHECKPOINTS
    sources = _published(settings.data)
    big, one = _store(settings, sources, count), _store(settings, sources, 1)
    pages = {
        "full": settings.workdir / "sweep.html",
        "no-texts": settings.workdir / "sweep-no-texts.html",
        "one": settings.workdir / "one.html",
    }
    walls = {
        "full": _mtbench(settings.workdir, "report", "report", "--store", str(big),
                         "-o", str(pages["full"])),
        "no-texts": _mtbench(settings.workdir, "report-no-texts", "report", "--store", str(big),
                             "-o", str(pages["no-texts"]), "--no-texts"),
        "one": _mtbench(settings.workdir, "report-one", "report", "--store", str(one),
                        "-o", str(pages["one"])),
    }  # fmt: skip
    profile = tempfile.mkdtemp(prefix="mtbench-bench-chromium-")
    driver = _browser(profile)
    try:
        loads = {name: _load_seconds(driver, page) for name, page in pages.items()}
        switch = _switch_ms(driver, pages["full"], 101)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return _figures(count, pages, walls, loads, switch)


def _figures(
    count: int,
    pages: dict[str, Path],
    walls: dict[str, float],
    loads: dict[str, float],
    switch: float,
) -> Outcome:
    out = Outcome()
    size = {name: page.stat().st_size / 1e6 for name, page in pages.items()}
    plain = _plain_size(pages["full"]) / 1e6
    out.add(f"{count} models: report size", f"{size['full']:.1f} MB", "≤ 10 MB", size["full"] <= 10)
    out.add(
        "size ÷ same texts as plain JSON",
        f"{size['full'] / plain:.2f} ({size['full']:.1f} / {plain:.1f} MB)",
        "≤ 0.5",
        size["full"] / plain <= 0.5,
    )
    out.add("--no-texts size", f"{size['no-texts']:.2f} MB")
    out.add(
        f"load to first question drawn, {count} models",
        f"{loads['full']:.2f} s",
        "≤ 2 s",
        loads["full"] <= 2.0,
    )
    ratio = loads["full"] / loads["one"]
    out.add(
        f"load, {count} models ÷ 1 model",
        f"{ratio:.1f} ({loads['full']:.2f} / {loads['one']:.2f} s)",
    )
    out.add("--no-texts load", f"{loads['no-texts']:.2f} s")
    out.add(f"switch to another question ({count} answer cards)", f"{switch:.0f} ms")
    out.add("mtbench report wall (texts / --no-texts)", f"{walls['full']:.1f} s / "
            f"{walls['no-texts']:.1f} s")  # fmt: skip
    out.raw = {
        "models": count,
        "size_mb": size,
        "plain_size_mb": plain,
        "load_s": loads,
        "switch_ms": switch,
        "report_wall_s": walls,
    }
    return out
