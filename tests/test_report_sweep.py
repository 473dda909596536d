"""The report's sweep section in headless Chromium: a score-against-step chart with one point per
checkpoint, the best marked, one small chart per category, the paired-difference table, and
checkpoint labels shown as text, never run. `MTBENCH_UPDATE_SCREENSHOT=1` also refreshes
docs/sweep.png (the README's picture)."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from pathlib import Path

import pytest

from engine.report.data import gather_report
from engine.report.html import write_report
from tests.support.sweepstore import sweep_store
from tests.test_report import _open, browser  # noqa: F401 (the module's Chromium fixture)

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
except ImportError:  # the `browser` fixture reports it as a failure
    pass

SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "sweep.png"
HOSTILE = "<img src=x onerror=window.__pwned=1>run-"  # a label is an answer file's stem
STEPS = (200, 400, 600, 800, 1000, 1200)
CURVE = {200: 3.1, 400: 4.6, 600: 5.4, 800: 6.1, 1000: 6.6, 1200: 6.4}  # plateaus: 1000 vs 1200


# Three questions of each of MT-Bench's eight categories (81-90 writing, ..., 151-160 humanities).
QUESTION_IDS = tuple(first + k for first in range(81, 161, 10) for k in range(3))
CATEGORIES = 8


def _ratings(level: float, seed: int) -> dict[tuple[int, int], float]:
    """Whole ratings scattered around `level`, and harder questions rated lower, as a judge's."""
    rng = random.Random(seed)
    return {
        (qid, turn): float(min(10, max(1, round(level - (qid % 3) * 0.5 + rng.gauss(0, 1.2)))))
        for qid in QUESTION_IDS
        for turn in (1, 2)
    }


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    ratings = {f"step-{s}": _ratings(CURVE[s], i) for i, s in enumerate(STEPS)}
    ratings |= {f"{HOSTILE}{s}": _ratings(5.0 + i, i) for i, s in enumerate((10, 20, 30))}
    store = sweep_store(root, ratings)
    return asyncio.run(write_report(store, root / "report.html"))


def _sweep(driver: WebDriver, name: str):  # type: ignore[no-untyped-def]
    (found,) = [
        d
        for d in driver.find_elements(By.CSS_SELECTOR, "#sweeps div.sweep")
        if d.get_attribute("data-sweep") == name
    ]
    return found


def test_the_chart_has_one_point_per_checkpoint_and_marks_the_best(
    browser: WebDriver,  # noqa: F811
    sweep_report: Path,
) -> None:
    assert _open(browser, sweep_report, "#sweeps") == []
    sweep = _sweep(browser, "step-*")
    overall = sweep.find_element(By.CSS_SELECTOR, "svg.step-chart:not(.small)")
    points = overall.find_elements(By.CSS_SELECTOR, "circle.point")
    assert [p.get_attribute("data-step") for p in points] == [str(s) for s in STEPS]
    xs = [float(p.get_attribute("cx")) for p in points]
    assert xs == sorted(xs) and len(set(xs)) == len(STEPS)
    (best,) = overall.find_elements(By.CSS_SELECTOR, "circle.point.best")
    assert best.get_attribute("data-label") == "step-1000"
    assert "best: step-1000" in overall.text
    assert overall.find_elements(By.CSS_SELECTOR, "polygon.band")
    multiples = sweep.find_elements(By.CSS_SELECTOR, "svg.step-chart.small")
    assert len(multiples) == CATEGORIES
    for chart in multiples:
        assert len(chart.find_elements(By.CSS_SELECTOR, "circle.point")) == len(STEPS)


def test_the_paired_table_says_which_checkpoints_are_distinguishable_from_the_best(
    browser: WebDriver,  # noqa: F811
    sweep_report: Path,
) -> None:
    _open(browser, sweep_report, "#sweeps")
    rows = _sweep(browser, "step-*").find_elements(By.CSS_SELECTOR, "table.sweep-table tbody tr")
    verdicts = {
        r.get_attribute("data-label"): r.find_elements(By.TAG_NAME, "td")[-1].text for r in rows
    }
    data = asyncio.run(gather_report(sweep_report.parent / "store.sqlite", "mt_bench"))
    (board,) = [b for b in data.sweeps if b.sweep == "step-*"]
    for checkpoint in board.summary.checkpoints:
        paired = checkpoint.versus_best
        if paired is None:
            assert verdicts[checkpoint.label] == ""
        else:
            assert verdicts[checkpoint.label] == ("yes" if paired.distinguishable else "no")
    assert verdicts["step-200"] == "yes"  # 3.1 against 6.6
    assert "no" in verdicts.values()  # 6.4 against 6.6 is within the judge's noise


def test_checkpoint_labels_are_shown_as_text_and_never_run(
    browser: WebDriver,  # noqa: F811
    sweep_report: Path,
) -> None:
    assert _open(browser, sweep_report, "#sweeps") == []
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    sweep = _sweep(browser, f"{HOSTILE}*")
    labels = [
        p.get_attribute("data-label")
        for p in sweep.find_elements(By.CSS_SELECTOR, "svg.step-chart:not(.small) circle.point")
    ]
    assert labels == [f"{HOSTILE}{s}" for s in (10, 20, 30)]
    assert f"{HOSTILE}30" in sweep.find_element(By.CSS_SELECTOR, "table.sweep-table").text
    assert HOSTILE not in sweep_report.read_text()


def test_screenshot_of_a_sweep(
    browser: WebDriver,  # noqa: F811
    sweep_report: Path,
    tmp_path: Path,
) -> None:
    _open(browser, sweep_report, "#sweeps")
    # A viewport tall enough for the whole sweep, table included, in one picture.
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 2000, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        shot = tmp_path / "sweep.png"
        assert _sweep(browser, "step-*").screenshot(str(shot))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("MTBENCH_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(shot, SCREENSHOT)
