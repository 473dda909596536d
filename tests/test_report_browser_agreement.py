"""The report's "How much the judges agree" section and Bradley-Terry tables, in headless Chromium.

A store with three judge labels (the FastChat reference run and two judges derived from it, one of
them labelled with markup) gets the section with one table per mode, holding the figures `show
--agreement --json` prints; a store with one judge has no such section. Each all-pairs judge gets
its Bradley-Terry table beside FastChat's win rates, with the ratings `show --json` prints.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.display import format_number
from engine.interop import import_fastchat
from engine.report.html import report_page, write_report
from tests.support.judgestore import REFERENCE, three_judge_store, write_judge
from tests.support.paths import FASTCHAT_REFERENCE
from tests.support.runconfig import mtbench
from tests.test_report import _open, browser  # noqa: F401 (the module's Chromium fixture)

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
except ImportError:  # the `browser` fixture reports it as a failure
    pass

HOSTILE = "<img src=x onerror=window.__pwned=1>judge"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agreement")
    store = three_judge_store(root)
    asyncio.run(import_fastchat(store, write_judge(root, HOSTILE, rule="judge-b")))
    return store


@pytest.fixture(scope="module")
def report(store: Path) -> Path:
    return asyncio.run(write_report(store, store.parent / "report.html"))


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = mtbench(capsys, *argv, "--json")
    assert code == 0, err
    return orjson.loads(out)


def _rows(driver: WebDriver, selector: str) -> list[list[str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, f"{selector} tbody tr")
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def test_the_agreement_section_shows_what_show_agreement_prints(
    browser: WebDriver,  # noqa: F811
    report: Path,
    store: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _open(browser, report, "#agreement") == []
    assert browser.execute_script("return window.__pwned") is None
    section = browser.find_element(By.ID, "agreement")
    assert section.is_displayed()
    assert "How much the judges agree" in section.text and "Krippendorff" in section.text
    nav = browser.find_element(By.CSS_SELECTOR, 'nav.sections a[href="#agreement"]')
    assert nav.text == "Judge agreement"
    expected = _json(capsys, "show", "--store", str(store), "--agreement")
    judges = expected["judges"]
    assert sorted(judges) == sorted([REFERENCE, "judge-b", "judge-c", HOSTILE])
    single = _rows(browser, "#agreement .agreement-single")
    assert [row[:2] for row in single] == [list(p) for p in itertools.combinations(judges, 2)]
    for shown, figures in zip(single, expected["single"], strict=True):
        alpha, rho, tau = (figures[k] for k in ("krippendorff_alpha", "spearman", "kendall_tau"))
        assert shown[2:] == [
            format_number(alpha["value"], 3), str(alpha["items"]),
            format_number(rho["value"], 3), str(rho["items"]),
            format_number(tau["value"], 3), str(tau["models"]),
        ]  # fmt: skip
    pairwise = _rows(browser, "#agreement .agreement-pairwise")
    for shown, figures in zip(pairwise, expected["pairwise"], strict=True):
        kappa, agreement = figures["cohen_kappa"], figures["agreement"]
        without = figures["agreement_without_ties"]
        assert shown[:4] == [
            *figures["judges"],
            format_number(kappa["value"], 3),
            str(kappa["items"]),
        ]
        assert shown[5] == f"{agreement['agreed']}/{agreement['pairs']}"
        assert shown[7] == f"{without['agreed']}/{without['pairs']}"
    # The hostile judge is judge-b under another label: the two agree perfectly.
    copy = next(row for row in single if sorted(row[:2]) == sorted(["judge-b", HOSTILE]))
    assert copy[2] == "1.000"


def test_every_all_pairs_judge_has_its_bradley_terry_table(
    browser: WebDriver,  # noqa: F811
    report: Path,
    store: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _open(browser, report)
    tables = browser.find_elements(By.CSS_SELECTOR, "section.judge .bradley-terry")
    assert len(tables) == 4
    index = next(
        i
        for i, title in enumerate(browser.find_elements(By.CSS_SELECTOR, "section.judge h2"))
        if title.text.startswith(f"Judge {REFERENCE} (")
    )
    shown = _rows(browser, f"#judge-{index} .bradley-terry")
    board = _json(
        capsys, "show", "--store", str(store), "--judge", REFERENCE, "--mode", "pairwise-all"
    )
    ratings = board["leaderboards"][0]["bradley_terry"]["models"]
    assert [row[1:3] for row in shown] == [
        [entry["model"], format_number(entry["rating"], 1)] for entry in ratings
    ]
    assert [row[-1] for row in shown] == [str(entry["battles"]) for entry in ratings]
    for row in browser.find_elements(By.CSS_SELECTOR, f"#judge-{index} .bradley-terry tbody tr"):
        assert row.find_element(By.CSS_SELECTOR, "td.ci-cell svg.ci-bar").is_displayed()


def test_one_judge_gets_no_agreement_section_and_no_texts_keeps_it(
    store: Path, tmp_path: Path
) -> None:
    single = tmp_path / "one.sqlite"
    asyncio.run(import_fastchat(single, FASTCHAT_REFERENCE))
    page = asyncio.run(report_page(single, tmp_path / "one.html")).decode()
    assert 'id="agreement"' not in page and "Judge agreement" not in page
    assert 'class="bradley-terry"' in page
    page = asyncio.run(report_page(store, tmp_path / "r.html", texts=False)).decode()
    assert 'id="agreement"' in page and HOSTILE not in page
