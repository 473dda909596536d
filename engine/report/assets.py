"""The HTML report's stylesheet and script, inlined into every report file.

They live in Python strings rather than beside the package as .css/.js files so that a plain
`pip install .` carries them without package-data configuration, and so the report needs nothing
but itself. The script is written for untrusted data: it only ever reads the JSON block and puts
text into the page with `textContent`; it never builds markup from data. The report's
Content-Security-Policy allows this script (by its hash) and nothing else to run.
"""

from __future__ import annotations

__all__ = ["REPORT_CSS", "REPORT_JS"]

REPORT_CSS = """
:root { --ink: #1d2330; --muted: #5d6678; --line: #dde1e8; --soft: #f4f6f9; --accent: #4e79a7;
  --bad: #c0392b; --warn: #b7791f; --good: #2f855a; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: #fff; }
header.top { padding: 14px 28px 0; border-bottom: 1px solid var(--line); background: var(--soft); }
header.top h1 { margin: 0 0 2px; font-size: 20px; }
.meta { margin: 0 0 8px; color: var(--muted); }
.meta code { background: #fff; padding: 0 4px; border-radius: 3px; }
.warning { color: var(--bad); }
nav.sections { display: flex; gap: 18px; flex-wrap: wrap; padding-bottom: 8px; }
nav.sections a { color: var(--accent); text-decoration: none; }
nav.sections a:hover { text-decoration: underline; }
main { padding: 8px 28px 40px; max-width: 1500px; }
section { margin-top: 18px; }
h2 { font-size: 18px; margin: 18px 0 8px; border-bottom: 2px solid var(--line);
  padding-bottom: 3px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
h4 { font-size: 13px; margin: 8px 0 4px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.note { color: var(--muted); max-width: 900px; margin: 4px 0 10px; }
.grid2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 24px;
  align-items: start; }
@media (max-width: 1100px) { .grid2 { grid-template-columns: 1fr; } }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: right;
  white-space: nowrap; }
th { background: var(--soft); font-weight: 600; position: sticky; top: 0; }
td.model, th.model { text-align: left; }
td.rank { color: var(--muted); }
td.ci-cell { padding: 0 6px; }
tr:hover td { background: #fafbfd; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 6px; vertical-align: -1px; }
svg text { font: 11px system-ui, sans-serif; fill: var(--ink); }
svg .tick { fill: var(--muted); font-size: 10px; }
svg .ring, svg .spoke, svg .grid { fill: none; stroke: var(--line); stroke-width: 1; }
svg.radar { width: 100%; max-width: 560px; height: auto; }
svg.radar .series { fill-opacity: .10; stroke-width: 1.8; transition: opacity .15s; }
svg.radar.crowded .series { fill-opacity: .02; stroke-width: 1.3; }
svg.radar.focusing .series:not(.focus) { opacity: .12; }
svg.radar .series.focus { fill-opacity: .28; stroke-width: 2.6; }
svg .hidden { display: none; }
svg.ci-bar .interval { stroke: var(--accent); stroke-width: 3; stroke-linecap: round; }
svg.ci-bar circle { fill: var(--ink); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 6px; margin: 6px 0; max-width: 560px; }
.legend button { font: inherit; font-size: 12px; border: 1px solid var(--line); background: #fff;
  border-radius: 12px; padding: 1px 9px 1px 6px; cursor: pointer; }
.legend button.off { opacity: .4; text-decoration: line-through; }
.legend .all { color: var(--muted); }
.turn-legend { font-size: 12px; color: var(--muted); }
.browser-controls { display: flex; gap: 12px; align-items: center; flex-wrap: wrap;
  position: sticky; top: 0; background: #fff; padding: 8px 0; z-index: 2;
  border-bottom: 1px solid var(--line); }
.browser-controls select { font: inherit; max-width: 640px; }
.browser-controls button { font: inherit; }
article { border: 1px solid var(--line); border-radius: 6px; padding: 6px 14px 10px;
  margin: 10px 0; }
article.question-card { background: var(--soft); }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
.answer-text { max-height: 26em; overflow: auto; padding: 6px 10px; background: var(--soft);
  border-radius: 4px; }
.question-text { font-size: 15px; }
.judgment { margin: 6px 0 0 18px; padding: 4px 10px; border-left: 3px solid var(--line); }
.judgment-head { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
.judge-name { font-weight: 600; }
.score { font-weight: 700; }
.score.failed { color: var(--bad); }
.status { font-size: 12px; color: var(--muted); }
.status.failed { color: var(--bad); }
.reasoning { color: #333b4a; font-size: 13px; }
details.pair { margin: 6px 0; border: 1px solid var(--line); border-radius: 4px;
  padding: 4px 10px; }
details.pair summary { cursor: pointer; }
details.thinking { margin: 4px 0; color: #5b6475; font-size: 13px; }
details.thinking summary { cursor: pointer; font-style: italic; }
.empty { color: var(--muted); font-style: italic; }
"""

REPORT_JS = r"""
(() => {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const byId = (id) => document.getElementById(id);
  const STATUSES = ["ok", "fallback", "imported", "out_of_range", "missing", "invalid"];
  const FAILED = ["missing", "invalid"];

  function node(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = String(text);
    return element;
  }

  function swatch(modelIndex) {
    const mark = node("span", "swatch");
    mark.style.background = data.colors[modelIndex];
    return mark;
  }

  function formatScore(score) {
    if (typeof score === "string") return score;  // "inf": JSON has no infinity
    if (Math.abs(score) >= 1e6) return score.toPrecision(3);
    return Number.isInteger(score) ? String(score) : score.toFixed(2).replace(/0$/, "");
  }

  // Radar legends: hover brings a model forward, a click hides or shows it.
  document.querySelectorAll(".chart-with-legend").forEach((box) => {
    const svg = box.querySelector("svg.radar");
    const shapes = (model) => Array.from(svg.querySelectorAll(".series"))
      .filter((shape) => shape.getAttribute("data-model") === model);
    const buttons = Array.from(box.querySelectorAll(".legend button[data-model]"));
    const setShown = (button, shown) => {
      button.classList.toggle("off", !shown);
      button.setAttribute("aria-pressed", String(shown));
      shapes(button.getAttribute("data-model"))
        .forEach((s) => s.classList.toggle("hidden", !shown));
    };
    buttons.forEach((button) => {
      const model = button.getAttribute("data-model");
      button.addEventListener("click", () => setShown(button, button.classList.contains("off")));
      button.addEventListener("mouseenter", () => {
        svg.classList.add("focusing");
        shapes(model).forEach((s) => s.classList.add("focus"));
      });
      button.addEventListener("mouseleave", () => {
        svg.classList.remove("focusing");
        shapes(model).forEach((s) => s.classList.remove("focus"));
      });
    });
    box.querySelectorAll(".legend button.all").forEach((button) => {
      const shown = button.getAttribute("data-show") === "all";
      button.addEventListener("click", () => buttons.forEach((b) => setShown(b, shown)));
    });
  });

  // Question browser.
  const questions = data.questions;
  const position = new Map(questions.map((q, i) => [String(q.id), i]));
  const select = byId("question-select");
  const filter = byId("model-filter");
  const view = byId("question-view");

  questions.forEach((q) => {
    const first = q.turns.length ? q.turns[0].replace(/\s+/g, " ") : "(text not stored)";
    const label = "Q" + q.id + " · " + q.category + " — " +
      (first.length > 80 ? first.slice(0, 79) + "…" : first);
    const option = node("option", null, label);
    option.value = String(q.id);
    select.appendChild(option);
  });
  data.models.forEach((model, m) => {
    const option = node("option", null, model);
    option.value = String(m);
    filter.appendChild(option);
  });

  function currentId() {
    const match = /^#q-(\d+)$/.exec(window.location.hash);
    if (match && position.has(match[1])) return match[1];
    return questions.length ? String(questions[0].id) : null;
  }

  function turnBlock(title) {
    const block = node("div", "turn");
    block.appendChild(node("h4", null, title));
    return block;
  }

  function questionCard(q) {
    const card = node("article", "question-card");
    card.appendChild(node("h3", null, "Question " + q.id + " · " + q.category));
    if (!q.turns.length) {
      card.appendChild(node("p", "empty",
        "The question text is not in this store (import with --data to record it)."));
    }
    q.turns.forEach((text, t) => {
      const block = turnBlock("Turn " + (t + 1));
      block.appendChild(node("div", "text question-text", text));
      card.appendChild(block);
    });
    if (q.reference) {
      const details = node("details", "reference");
      details.appendChild(node("summary", null, "Reference answer shown to the judge"));
      q.reference.forEach((text, t) => {
        const block = turnBlock("Reference, turn " + (t + 1));
        block.appendChild(node("div", "text", text));
        details.appendChild(block);
      });
      card.appendChild(details);
    }
    return card;
  }

  // A question's answers and judgments, packed (gzip, base64) and unpacked when first shown.
  const unpacked = new Map();
  const NO_ROWS = { answers: [], thinking: [], single: [], pair: [] };
  const LEFT_OUT = "(text left out of this report: it was written with --no-texts)";

  function unpack(id) {
    const packed = data.questionTexts[id];
    if (!packed) return Promise.resolve(NO_ROWS);
    return Promise.resolve().then(() => {  // a browser without DecompressionStream: a rejection
      const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      return new Response(stream).text();
    }).then((text) => {
      const rows = JSON.parse(text);
      unpacked.set(id, rows);
      return rows;
    });
  }

  function textBlock(className, text) {
    if (text === false) return node("p", "empty", LEFT_OUT);
    return node("div", className, text);
  }

  function thinkingBlock(text) {
    const details = node("details", "thinking");
    details.appendChild(node("summary", null, "Thinking (not part of the answer)"));
    details.appendChild(node("div", "text thinking-text", text));
    return details;
  }

  function judgmentBlock(row) {
    const [judge, , , score, status, text, sample, thinking] = row;
    const box = node("div", "judgment");
    const head = node("div", "judgment-head");
    const failed = score === -1 || score === null;
    head.appendChild(node("span", "judge-name", data.judges[judge].label));
    if (data.judges[judge].samples > 1) {
      head.appendChild(node("span", "status", "sample " + sample));
    }
    head.appendChild(node("span", failed ? "score failed" : "score",
      failed ? "score -1 (no rating found)" : "score " + formatScore(score)));
    const known = STATUSES.includes(status) ? status : "other";
    head.appendChild(node("span", FAILED.includes(known) ? "status failed" : "status",
      "parse: " + status));
    box.appendChild(head);
    if (thinking) box.appendChild(thinkingBlock(thinking));
    box.appendChild(textBlock("text reasoning", text));
    return box;
  }

  function answerCard(q, m, turns, thoughts, judged) {
    const model = data.models[m];
    const card = node("article", "answer-card");
    card.setAttribute("data-model", model);
    const title = node("h3");
    title.appendChild(swatch(m));
    title.appendChild(node("span", "model-name", model));
    card.appendChild(title);
    let count = Math.max(turns ? turns.length : 0, q.turns.length);
    judged.forEach((row) => { count = Math.max(count, row[2]); });
    for (let t = 1; t <= count; t += 1) {
      const block = turnBlock("Turn " + t);
      const text = turns ? turns[t - 1] : null;
      if (text === null || text === undefined) {
        block.appendChild(node("p", "empty", "no answer stored"));
      } else {
        const thought = thoughts ? thoughts[t - 1] : null;
        if (thought) block.appendChild(thinkingBlock(thought));
        block.appendChild(textBlock("text answer-text", text));
      }
      judged.filter((row) => row[2] === t).forEach((row) => block.appendChild(judgmentBlock(row)));
      card.appendChild(block);
    }
    return card;
  }

  function winnerName(winner, m1, m2) {
    if (winner === "model_1") return data.models[m1];
    if (winner === "model_2") return data.models[m2];
    return winner === "tie" ? "tie" : "no verdict";
  }

  function pairSection(rows, chosen) {
    const groups = new Map();
    rows.forEach((row) => {
      const [judge, m1, m2, turn] = row;
      if (chosen !== null && m1 !== chosen && m2 !== chosen) return;
      const key = [judge, m1, m2, turn].join(",");
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(row);
    });
    const section = node("section", "pairwise");
    if (!groups.size) return null;
    section.appendChild(node("h3", null, "Pairwise judgments"));
    groups.forEach((games) => {
      const [judge, m1, m2, turn] = games[0];
      const sampled = data.judges[judge].samples > 1;
      const gameName = (g) => "game " + g[4] + (sampled ? " sample " + g[8] : "");
      const verdicts = games.map((g) => gameName(g) + ": " + winnerName(g[5], m1, m2));
      const details = node("details", "pair");
      details.appendChild(node("summary", null, data.models[m1] + " vs " + data.models[m2] +
        " · turn " + turn + " · " + data.judges[judge].label + " — " + verdicts.join(", ")));
      games.forEach((g) => {
        const first = g[4] === 2 ? m2 : m1;
        const second = g[4] === 2 ? m1 : m2;
        const block = turnBlock(gameName(g) + " (A = " + data.models[first] + ", B = " +
          data.models[second] + ") → " + winnerName(g[5], m1, m2) + ", parse: " + g[6]);
        if (g[9]) block.appendChild(thinkingBlock(g[9]));
        block.appendChild(textBlock("text reasoning", g[7]));
        details.appendChild(block);
      });
      section.appendChild(details);
    });
    return section;
  }

  let shownRequest = 0;  // a question unpacked late is not drawn over a later choice

  function render(id) {
    const request = ++shownRequest;
    if (id === null) {
      view.replaceChildren(node("p", "empty", "No questions in this store."));
      return Promise.resolve();
    }
    const draw = (rows) => { if (request === shownRequest) drawQuestion(id, rows); };
    if (unpacked.has(id)) return Promise.resolve(draw(unpacked.get(id)));
    return unpack(id).then(draw, (error) => {
      if (request !== shownRequest) return;
      view.replaceChildren(node("p", "empty",
        "This browser could not unpack the question's texts (" + error + ")."));
    });
  }

  function drawQuestion(id, rows) {
    view.replaceChildren();
    const q = questions[position.get(id)];
    view.appendChild(questionCard(q));
    const answers = rows.answers;
    const thinking = rows.thinking;
    const singles = rows.single;
    const chosen = filter.value === "" ? null : Number(filter.value);
    let shown = 0;
    data.models.forEach((model, m) => {
      if (chosen !== null && chosen !== m) return;
      const turns = answers[m] || null;
      const judged = singles.filter((row) => row[1] === m);
      if (!turns && !judged.length) return;
      view.appendChild(answerCard(q, m, turns, thinking[m] || null, judged));
      shown += 1;
    });
    if (!shown) view.appendChild(node("p", "empty", "No answers stored for this question."));
    const pairs = pairSection(rows.pair, chosen);
    if (pairs) view.appendChild(pairs);
  }

  function show() {
    const id = currentId();
    if (id !== null) select.value = id;
    return render(id);
  }

  function step(delta) {
    const next = position.get(select.value) + delta;
    if (next >= 0 && next < questions.length) window.location.hash = "q-" + questions[next].id;
  }

  select.addEventListener("change", () => { window.location.hash = "q-" + select.value; });
  filter.addEventListener("change", show);
  byId("previous-question").addEventListener("click", () => step(-1));
  byId("next-question").addEventListener("click", () => step(1));
  window.addEventListener("hashchange", show);
  show().then(() => {
    if (/^#q-\d+$/.test(window.location.hash)) byId("questions").scrollIntoView();
    document.body.setAttribute("data-ready", "1");
  });
})();
"""
