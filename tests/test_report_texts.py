"""The report's question texts: packed per question and unpacked when shown, or left out.

A 50-checkpoint report embedding every answer and judge reply as plain JSON is tens of megabytes
that the browser parses before showing anything; packed, it is a fraction of that and opens at
once (benchmarks: the `report` scenario). `report --no-texts` leaves the texts out entirely.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from engine.report.packing import pack, unpack
from tests.support.runconfig import mtbench
from tests.test_report import (  # noqa: F401 - fixtures
    JUDGMENTS,
    _answers,
    _jsonl,
    _open,
    _view_text,
    browser,
    reference_store,
    report_payload,
)

LEFT_OUT = "(text left out of this report: it was written with --no-texts)"


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings(item)]
    return []


def test_packing_is_deterministic_ascii_and_round_trips() -> None:
    rows = {"answers": [["Aloha </script> ✓", None]], "single": [[0, 0, 1, 8.0, "ok", "x"]]}
    packed = pack(rows)
    assert packed == pack(rows)  # no timestamp: the same store gives the same report
    assert packed.isascii() and not set(packed) - set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    )
    assert unpack(packed) == rows


def test_no_texts_leaves_every_answer_and_reply_out_and_keeps_the_scores(
    browser: WebDriver,  # noqa: F811
    reference_store: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    full, small = tmp_path / "full.html", tmp_path / "small.html"
    assert mtbench(capsys, "report", "--store", str(reference_store), "-o", str(full))[0] == 0
    code, _, err = mtbench(
        capsys, "report", "--store", str(reference_store), "-o", str(small), "--no-texts"
    )
    assert code == 0, err
    assert small.stat().st_size < full.stat().st_size / 2

    payload = report_payload(small.read_text())
    assert payload["textsLeftOut"] is True
    rows = [unpack(packed) for packed in payload["questionTexts"].values()]
    kept = {text for row in rows for text in strings([row["answers"], row["single"]])}
    assert kept <= {"ok", "fallback", "missing", "invalid", "out_of_range", "imported"}
    assert all(not any(row["thinking"]) for row in rows)

    assert _open(browser, small, "#q-130") == []
    card = browser.find_element(By.CSS_SELECTOR, "article.answer-card[data-model='fake-alpha']")
    assert card.find_elements(By.CSS_SELECTOR, ".answer-text") == []
    assert card.text.count(LEFT_OUT) == 4  # two answers, two judge replies
    judgments = [
        r for r in _jsonl(JUDGMENTS / "gpt-4_single.jsonl")
        if r["question_id"] == 130 and r["model"] == "fake-alpha"
    ]  # fmt: skip
    for judgment in judgments:
        assert f"score {judgment['score']:g}" in card.text


def test_the_browser_unpacks_each_question_it_shows(
    browser: WebDriver,  # noqa: F811
    reference_store: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = tmp_path / "report.html"
    assert mtbench(capsys, "report", "--store", str(reference_store), "-o", str(report))[0] == 0
    assert _open(browser, report, "#q-81") == []
    for question in ("101", "81", "130"):  # 81 again: from what was unpacked before
        Select(browser.find_element(By.ID, "question-select")).select_by_value(question)
        WebDriverWait(browser, 5).until(lambda d, q=question: f"Question {q} " in _view_text(d))
        card = browser.find_element(By.CSS_SELECTOR, "article.answer-card[data-model='fake-beta']")
        answers = [a.get_attribute("textContent") for a in card.find_elements(
            By.CSS_SELECTOR, ".answer-text"
        )]  # fmt: skip
        assert answers == _answers("fake-beta")[int(question)]


def test_a_browser_that_cannot_unpack_says_so_and_still_shows_the_leaderboards(
    browser: WebDriver,  # noqa: F811
    reference_store: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = tmp_path / "report.html"
    assert mtbench(capsys, "report", "--store", str(reference_store), "-o", str(report))[0] == 0
    old_browser = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.DecompressionStream;"}
    )
    try:
        assert _open(browser, report, "#q-81") == []
        assert "could not unpack the question's texts" in _view_text(browser)
        assert browser.find_elements(By.CSS_SELECTOR, "section.judge tr[data-model]")
    finally:
        browser.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": old_browser["identifier"]}
        )
