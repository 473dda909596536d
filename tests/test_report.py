"""The HTML report, checked in a real headless Chromium: it loads offline without errors, shows
FastChat's numbers, draws one radar polygon per model, browses every question with its answers and
judge replies, and shows what a model wrote as text without ever running it.

Needs the Debian packages `chromium` and `chromium-driver` (paths overridable with
$MTBENCH_CHROMIUM / $MTBENCH_CHROMEDRIVER) and the `selenium` test extra. A missing browser fails
these tests, never skips them. `MTBENCH_UPDATE_SCREENSHOT=1` also refreshes docs/report.png.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import struct
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.chromium import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS
from engine.errors import InputError
from engine.interop import import_fastchat, record_questions
from engine.report.browser import embed_json
from engine.report.data import gather_report
from engine.report.html import write_report
from engine.report.packing import unpack
from tests.support.paths import FASTCHAT_REFERENCE, MTBENCH_DATA

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # reported by the `browser` fixture as a failure, not a skip
    webdriver = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "report.png"
MODELS = ("fake-alpha", "fake-beta", "fake-gamma")
ANSWERS = FASTCHAT_REFERENCE / "model_answer"
JUDGMENTS = FASTCHAT_REFERENCE / "model_judgment"
PAYLOAD = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'
HOSTILE_MODEL = "<img src=x onerror=window.__pwned=3>"  # a model name is an answer file's stem
JUDGE_REPLY_FIELDS = {
    "gpt-4_single.jsonl": ("judgment",),
    "gpt-4_pair.jsonl": ("g1_judgment", "g2_judgment"),
}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))


def _answers(model: str) -> dict[int, list[str]]:
    return {
        row["question_id"]: row["choices"][0]["turns"] for row in _jsonl(ANSWERS / f"{model}.jsonl")
    }


def _questions() -> dict[int, dict[str, Any]]:
    return {row["question_id"]: row for row in _jsonl(MTBENCH_DATA / "mt_bench" / "question.jsonl")}


def _build_store(store: Path, source: Path) -> None:
    async def build() -> None:
        await import_fastchat(store, source)
        await record_questions(store, MTBENCH_DATA, "mt_bench")

    asyncio.run(build())


def _report(store: Path, out: Path, **options: Any) -> Path:
    return asyncio.run(write_report(store, out, **options))


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("reference") / "reference.sqlite"
    _build_store(store, FASTCHAT_REFERENCE)
    return store


@pytest.fixture(scope="module")
def reference_report(reference_store: Path) -> Path:
    return _report(reference_store, reference_store.parent / "report.html")


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference run, with markup in an answer, in judge replies and in a model's name."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "model_answer").mkdir()
    (root / "model_judgment").mkdir()
    alpha = _jsonl(ANSWERS / "fake-alpha.jsonl")
    for row in alpha:
        if row["question_id"] == 81:
            row["choices"][0]["turns"][0] = f"Aloha! {PAYLOAD} Mahalo."
    _write_jsonl(root / "model_answer" / "fake-alpha.jsonl", alpha)
    shutil.copy(ANSWERS / "fake-beta.jsonl", root / "model_answer")
    shutil.copy(ANSWERS / "fake-gamma.jsonl", root / "model_answer" / f"{HOSTILE_MODEL}.jsonl")
    for name, fields in JUDGE_REPLY_FIELDS.items():
        rows = _jsonl(JUDGMENTS / name)
        for row in rows:
            for key in ("model", "model_1", "model_2"):
                if row.get(key) == "fake-gamma":
                    row[key] = HOSTILE_MODEL
            if row["question_id"] == 81:
                for field in fields:
                    row[field] = f"{PAYLOAD} {row[field]}"
        _write_jsonl(root / "model_judgment" / name, rows)
    store = root / "hostile.sqlite"
    _build_store(store, root)
    return _report(store, root / "report.html")


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if webdriver is None:
        pytest.fail("selenium is not installed: pip install -e '.[test]'")
    for binary, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not binary.is_file():
            pytest.fail(f"{binary} not found: install it with `apt-get install -y {package}`")
    profile = tempfile.mkdtemp(prefix="mtbench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
    except (WebDriverException, OSError) as error:
        shutil.rmtree(profile, ignore_errors=True)
        pytest.fail(f"headless Chromium ({CHROMIUM}, {CHROMEDRIVER}) could not start: {error}")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _open(driver: WebDriver, report: Path, fragment: str = "") -> list[dict[str, Any]]:
    """Load the report afresh (not a same-page hash change) and return its console errors."""
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get(report.as_uri() + fragment)
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.body.dataset.ready === '1'")
    )
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def report_payload(page: str) -> dict[str, Any]:
    """The report's data block (its question texts still packed)."""
    start = page.index('<script type="application/json" id="report-data">')
    block = page[page.index(">", start) + 1 : page.index("</script>", start)]
    return orjson.loads(block)


def _view_text(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "question-view").text


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_report_loads_offline_without_console_errors(browser: WebDriver, reference_report: Path):
    errors = _open(browser, reference_report)
    assert errors == []
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name)"
    )
    assert fetched == []
    page = reference_report.read_text()
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not re.search(r"<script[^>]+src|<link[^>]+stylesheet|@import|url\(", page, re.I)
    assert "default-src 'none'" in page  # the CSP would block any fetch that slipped in


def test_leaderboard_shows_fastchat_numbers_and_intervals(
    browser: WebDriver, reference_report: Path
):
    _open(browser, reference_report)
    printed = (FASTCHAT_REFERENCE / "show_single.txt").read_text()
    sections = re.split(r"#+ (First turn|Second turn|Average) #+", printed)
    expected: dict[str, dict[str, str]] = {}
    for title, body in zip(sections[1::2], sections[2::2], strict=True):
        column = {"First turn": "turn-1", "Second turn": "turn-2", "Average": "overall"}[title]
        for model, value in re.findall(r"^(fake-\w+)\s+(?:\d\s+)?(\d+\.\d+)$", body, re.M):
            expected.setdefault(model, {})[column] = value
    missing = Counter(
        r["model"] for r in _jsonl(JUDGMENTS / "gpt-4_single.jsonl") if r["score"] == -1
    )
    rows = browser.find_elements(By.CSS_SELECTOR, "section.judge table tr[data-model]")
    shown = {row.get_attribute("data-model"): row for row in rows[: len(MODELS)]}
    assert set(shown) == set(MODELS)
    for model, row in shown.items():
        for column, value in expected[model].items():
            assert row.find_element(By.CSS_SELECTOR, f"td.{column}").text == value
        interval = row.find_element(By.CSS_SELECTOR, "td.ci").text
        bounds = re.fullmatch(r"\[(\d+\.\d+), (\d+\.\d+)\]", interval)
        assert bounds, interval
        assert float(bounds[1]) < float(expected[model]["overall"]) < float(bounds[2])
        assert row.find_element(By.CSS_SELECTOR, "td.ci-cell svg.ci-bar").is_displayed()
        assert row.find_element(By.CSS_SELECTOR, "td.missing").text == str(missing[model])


def test_radar_has_one_polygon_per_model_and_a_legend(browser: WebDriver, reference_report: Path):
    _open(browser, reference_report)
    polygons = browser.find_elements(By.CSS_SELECTOR, "svg.radar polygon")
    assert sorted(p.get_attribute("data-model") for p in polygons) == list(MODELS)
    legend = browser.find_elements(By.CSS_SELECTOR, ".legend button[data-model]")
    assert sorted(b.get_attribute("data-model") for b in legend) == list(MODELS)
    axes = browser.find_elements(By.CSS_SELECTOR, "svg.radar text.axis")
    assert {a.text for a in axes} == {q["category"] for q in _questions().values()}
    beta = next(b for b in legend if b.get_attribute("data-model") == "fake-beta")
    beta.click()
    hidden = browser.execute_script(
        "return [...document.querySelectorAll('svg.radar polygon')]"
        ".filter((p) => getComputedStyle(p).display === 'none').map((p) => p.dataset.model)"
    )
    assert hidden == ["fake-beta"]


def test_turn_bars_show_both_turns_of_every_model(browser: WebDriver, reference_report: Path):
    _open(browser, reference_report)
    for turn in (1, 2):
        bars = browser.find_elements(By.CSS_SELECTOR, f"svg.turn-bars rect.turn-{turn}")
        assert sorted(b.get_attribute("data-model") for b in bars) == list(MODELS)


def test_selecting_a_question_shows_its_text_answers_and_judge_reasoning(
    browser: WebDriver, reference_report: Path
):
    _open(browser, reference_report)
    Select(browser.find_element(By.ID, "question-select")).select_by_value("130")
    WebDriverWait(browser, 5).until(lambda d: "Question 130" in _view_text(d))
    assert browser.execute_script("return location.hash") == "#q-130"
    text = _squash(_view_text(browser))
    for turn in _questions()[130]["turns"]:
        assert _squash(turn) in text
    judgments = [r for r in _jsonl(JUDGMENTS / "gpt-4_single.jsonl") if r["question_id"] == 130]
    for model in MODELS:
        card = browser.find_element(
            By.XPATH, f"//article[contains(@class,'answer-card')][@data-model='{model}']"
        )
        assert card.is_displayed()
        answers = card.find_elements(By.CSS_SELECTOR, ".answer-text")
        assert [a.get_attribute("textContent") for a in answers] == _answers(model)[130]
        reasons = card.find_elements(By.CSS_SELECTOR, ".reasoning")
        assert [r.get_attribute("textContent") for r in reasons] == [
            r["judgment"] for r in sorted(judgments, key=lambda r: r["turn"]) if r["model"] == model
        ]
        assert all(r.is_displayed() for r in reasons)
    pairs = browser.find_elements(By.CSS_SELECTOR, "details.pair")
    assert len(pairs) == 6  # 3 pairs x 2 turns
    pairs[0].find_element(By.TAG_NAME, "summary").click()
    games = [r for r in _jsonl(JUDGMENTS / "gpt-4_pair.jsonl") if r["question_id"] == 130]
    shown = _squash(pairs[0].text)
    assert any(_squash(g["g1_judgment"]) in shown for g in games)


def test_a_deep_link_opens_that_question(browser: WebDriver, reference_report: Path):
    assert _open(browser, reference_report, "#q-101") == []
    assert (
        Select(browser.find_element(By.ID, "question-select")).first_selected_option.get_attribute(
            "value"
        )
        == "101"
    )
    assert _squash(_questions()[101]["turns"][0]) in _squash(_view_text(browser))
    Select(browser.find_element(By.ID, "model-filter")).select_by_visible_text("fake-beta")
    cards = browser.find_elements(By.CSS_SELECTOR, "article.answer-card")
    assert [c.get_attribute("data-model") for c in cards] == ["fake-beta"]


def test_markup_in_answers_judgments_and_model_names_is_shown_as_text_and_never_runs(
    browser: WebDriver, hostile_report: Path
):
    errors = _open(browser, hostile_report, "#q-81")
    assert errors == []
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    assert browser.execute_script("return document.scripts.length") == 2
    text = _view_text(browser)
    assert "<script>window.__pwned = 1</script>" in text
    alpha = browser.find_element(By.CSS_SELECTOR, "article.answer-card[data-model='fake-alpha']")
    first = alpha.find_element(By.CSS_SELECTOR, ".answer-text")
    assert first.get_attribute("textContent") == f"Aloha! {PAYLOAD} Mahalo."
    assert PAYLOAD in alpha.find_element(By.CSS_SELECTOR, ".reasoning").get_attribute("textContent")
    polygons = browser.find_elements(By.CSS_SELECTOR, "svg.radar polygon")
    assert HOSTILE_MODEL in {p.get_attribute("data-model") for p in polygons}
    names = {c.text for c in browser.find_elements(By.CSS_SELECTOR, "section.judge td.model")}
    assert HOSTILE_MODEL in names
    page = hostile_report.read_text()
    assert PAYLOAD not in page and HOSTILE_MODEL not in page
    assert page.count("</script>") == 2


def test_embedded_json_cannot_close_its_script_tag():
    hostile = {"text": "</script><!-- <script>&amp;", "</": ["-->"]}
    embedded = embed_json(hostile)
    assert "<" not in embedded and ">" not in embedded and "&" not in embedded
    assert orjson.loads(embedded) == hostile


def test_reliability_figures_match_the_judgment_files(reference_store: Path):
    data = asyncio.run(gather_report(reference_store, "mt_bench"))
    (judge,) = data.judges
    single = _jsonl(JUDGMENTS / "gpt-4_single.jsonl")
    pair = _jsonl(JUDGMENTS / "gpt-4_pair.jsonl")
    rates = {r.kind: r for r in judge.reliability.parse}
    assert rates["single"].total == len(single)
    assert rates["single"].count("missing") == sum(r["score"] == -1 for r in single)
    assert rates["pair"].total == 2 * len(pair)
    errors = sum(r[g] == "error" for r in pair for g in ("g1_winner", "g2_winner"))
    assert rates["pair"].count("missing") == errors
    position = judge.reliability.position
    assert position is not None
    won_by_a = sum(r["g1_winner"] == "model_1" for r in pair) + sum(
        r["g2_winner"] == "model_2" for r in pair
    )
    assert (position.won_by_a, position.errors) == (won_by_a, errors)
    complete = [r for r in pair if "error" not in (r["g1_winner"], r["g2_winner"])]
    agree = judge.reliability.consistency
    assert agree is not None
    assert agree.matches == len(complete)
    assert agree.consistent == sum(r["g1_winner"] == r["g2_winner"] for r in complete)
    answers = {model: _answers(model) for model in MODELS}
    points = [
        (r["score"], len(answers[r["model"]][r["question_id"]][r["turn"] - 1]))
        for r in single
        if r["score"] != -1
    ]
    length = judge.reliability.length
    assert length is not None and length.points == len(points)
    expected = statistics.correlation([float(s) for s, _ in points], [float(n) for _, n in points])
    assert length.pearson == pytest.approx(expected, abs=1e-12)


def test_the_published_31_models_fit_in_one_page_with_each_answer_once(
    browser: WebDriver, tmp_path: Path
):
    store = tmp_path / "published.sqlite"
    _build_store(store, MTBENCH_DATA / "published_pregenerated")
    report = _report(store, tmp_path / "published.html")
    page = report.read_text()
    assert report.stat().st_size < 8_000_000
    gpt4 = _jsonl(
        MTBENCH_DATA / "published_pregenerated" / "mt_bench" / "model_answer" / "gpt-4.jsonl"
    )
    answer = gpt4[0]["choices"][0]["turns"][0]
    packed = report_payload(page)["questionTexts"]
    unpacked = orjson.dumps([unpack(packed[question]) for question in sorted(packed)]).decode()
    assert unpacked.count(orjson.dumps(answer).decode()) == 1
    assert answer[:40] not in page  # texts are packed, for the page's size
    assert _open(browser, report, f"#q-{gpt4[0]['question_id']}") == []
    assert len(browser.find_elements(By.CSS_SELECTOR, "article.answer-card")) == 31


def test_an_unknown_judge_is_refused_and_the_output_replaced_atomically(
    reference_store: Path, tmp_path: Path
):
    out = tmp_path / "out" / "report.html"
    with pytest.raises(InputError, match="nobody"):
        _report(reference_store, out, judge="nobody")
    assert not out.exists()
    out.parent.mkdir()
    out.write_text("old report")
    _report(reference_store, out, judge="gpt-4")
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


def test_answers_imported_without_their_questions_are_still_browsable(
    browser: WebDriver, tmp_path: Path
):
    store = tmp_path / "bare.sqlite"
    asyncio.run(import_fastchat(store, FASTCHAT_REFERENCE))  # no record_questions: no categories
    report = _report(store, tmp_path / "bare.html")
    assert 'svg class="radar' not in report.read_text()  # one 'unknown' category: no radar
    assert _open(browser, report, "#q-81") == []
    assert "question text is not in this store" in _view_text(browser)
    cards = browser.find_elements(By.CSS_SELECTOR, "article.answer-card")
    assert [c.get_attribute("data-model") for c in cards] == list(MODELS)


def test_an_unwritable_output_is_one_clear_error(reference_store: Path, tmp_path: Path):
    with pytest.raises(InputError, match="cannot write the report"):
        _report(reference_store, tmp_path)  # a directory


def test_screenshot_of_the_reference_report(
    browser: WebDriver, reference_report: Path, tmp_path: Path
):
    _open(browser, reference_report)
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        shot = tmp_path / "report.png"
        assert browser.save_screenshot(str(shot))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1280, 900)
    if os.environ.get("MTBENCH_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(shot, SCREENSHOT)
