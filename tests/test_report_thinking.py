"""The HTML report of a run with a thinking model and a thinking judge, in a real headless Chromium:
answers as the judge read them, each one's thinking beside it, collapsed, and the judge's reasoning
settings with its identity. Needs Chromium like tests/test_report.py (whose browser it uses).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from engine.report.html import write_report
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config
from tests.test_report import _open, browser  # noqa: F401  (the Chromium fixture)

OPENING = "Let me think step by step about"


@pytest.fixture
def thinking_report(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> Iterator[Path]:
    fake.configure(thinking_models=["deep-*"], thinking_style="inline")
    deep = model("deep", fake.base_url, model="deep-r1")
    judge = {
        "name": "claude-judge",
        "model": "claude-sonnet",
        "api": "anthropic",
        "base_url": fake.url,
        "thinking": 1024,
    }
    config = write_config(tmp_path, models=[deep], judge=judge, questions=[81])
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out
    yield asyncio.run(write_report(tmp_path / "store.sqlite", tmp_path / "report.html"))


def test_the_report_shows_answers_as_judged_with_their_thinking_collapsed_beside_them(
    browser: WebDriver,  # noqa: F811
    thinking_report: Path,
) -> None:
    assert _open(browser, thinking_report, "#q-81") == []
    heading = browser.find_element(By.CSS_SELECTOR, "section.judge h2").text
    assert heading == "Judge claude-judge (model claude-sonnet, api anthropic, thinking=1024)"

    card = browser.find_element(By.CSS_SELECTOR, "article.answer-card[data-model='deep']")
    answers = [
        a.get_attribute("textContent") for a in card.find_elements(By.CSS_SELECTOR, ".answer-text")
    ]
    assert len(answers) == 2
    assert all(a.startswith("This is a simulated answer from deep-r1.") for a in answers)
    thoughts = card.find_elements(By.CSS_SELECTOR, "details.thinking")
    assert len(thoughts) == 4  # each answer's, and the judge's for each turn
    for details in thoughts:
        assert details.get_attribute("open") is None  # collapsed until clicked
        text = details.find_element(By.CSS_SELECTOR, ".thinking-text").get_attribute("textContent")
        assert text.startswith(OPENING)
        assert not details.find_element(By.CSS_SELECTOR, ".thinking-text").is_displayed()
    thoughts[0].find_element(By.TAG_NAME, "summary").click()
    assert thoughts[0].find_element(By.CSS_SELECTOR, ".thinking-text").is_displayed()
    replies = card.find_elements(By.CSS_SELECTOR, ".reasoning")
    assert len(replies) == 2 and all(OPENING not in r.get_attribute("textContent") for r in replies)
