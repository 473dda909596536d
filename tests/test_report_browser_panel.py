"""The report's judge panel section, in a real headless Chromium: the recorded panel's board is
there with its judges and aggregate, its numbers are `show --json`'s, a panel that cannot be shown
is named, and the page loads without console errors. Needs what tests/test_report.py needs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from engine.config_panel import PanelConfig
from engine.report.html import write_report
from tests.support.runconfig import mtbench
from tests.test_panel_show import _record, build_store
from tests.test_report import _open
from tests.test_report import browser as browser  # the module's headless Chromium

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
except ImportError:  # the `browser` fixture fails the test, saying so
    pass


@pytest.fixture(scope="module")
def panel_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("panel")
    store = build_store(root)
    _record(store, PanelConfig(("a", "b", "c"), "mean", "jury"))
    _record(store, PanelConfig(("a", "later"), "median", "waiting"))
    report = asyncio.run(write_report(store, root / "report.html"))
    return store, report


def test_the_panel_board_renders_with_its_judges_and_shows_numbers(
    browser: WebDriver, panel_report: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, report = panel_report
    assert _open(browser, report) == []
    section = browser.find_element(By.CSS_SELECTOR, "section.panel")
    assert section.find_element(By.TAG_NAME, "h2").text == "Panel jury"
    assert "mean of the judges' ratings" in section.text
    judges = [li.text for li in section.find_elements(By.CSS_SELECTOR, "ul.panel-judges li")]
    assert judges == [f"{j} (model {j}, api import)" for j in ("a", "b", "c")]
    nav = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "nav.sections a")]
    assert "Panel jury" in nav
    link = browser.find_element(By.CSS_SELECTOR, 'nav.sections a[href="#panel-0"]')
    assert link.is_displayed()

    code, out, _ = mtbench(capsys, "show", "--store", str(store), "--json")
    assert code == 0
    (panel,) = orjson.loads(out)["panels"]
    rows = section.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [row.get_attribute("data-model") for row in rows] == [
        entry["model"] for entry in panel["models"]
    ]
    for row, entry in zip(rows, panel["models"], strict=True):
        assert row.is_displayed()
        overall = row.find_element(By.CSS_SELECTOR, "td.overall").text
        assert float(overall) == pytest.approx(entry["score"], abs=1e-6)
        assert int(row.find_element(By.CSS_SELECTOR, "td.items").text) == entry["items"]
        assert int(row.find_element(By.CSS_SELECTOR, "td.left-out").text) == entry["left_out"]
        low, high = entry["ci_95"]
        assert row.find_element(By.CSS_SELECTOR, "td.ci").text == f"[{low:.2f}, {high:.2f}]"
        assert row.find_elements(By.CSS_SELECTOR, "td.ci-cell svg")  # the interval bar is drawn
    note = browser.find_element(By.CSS_SELECTOR, "p.panel-not-shown").text
    assert note == (
        "panel 'waiting' not shown: judge 'later' has no judgments for bench mt_bench yet"
    )


def test_a_panel_name_with_markup_is_written_as_text(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    name = "<img src=x onerror=alert(1)>"
    _record(store, PanelConfig(("a", "b"), "mean", name))
    page = asyncio.run(write_report(store, tmp_path / "report.html")).read_text()
    assert name not in page
    assert "Panel &lt;img src=x onerror=alert(1)&gt;" in page
