"""What used to fail mid-run is refused before the first request: judge prompts, reference answers,
serve commands, question temperatures; and turns answered but not judged are said out loud."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.fakeserver import FakeServer
from tests.support.refusal import assert_refused, copy_data, edit_jsonl
from tests.support.runconfig import model, mtbench, write_config

WRITING, MATH = 81, 111  # question ids: a plain category and a reference category


def judge_table(fake: FakeServer, mode: str = "single") -> dict[str, Any]:
    return {"name": "judge-x", "base_url": fake.base_url, "mode": mode}


def models_for(mode: str, fake: FakeServer) -> list[dict[str, Any]]:
    names = {"single": ["alpha"], "pairwise-all": ["alpha", "beta"]}.get(
        mode, ["alpha", "gpt-3.5-turbo"]
    )
    return [model(name, fake.base_url) for name in names]


@pytest.mark.parametrize(
    ("mode", "removed", "question"),
    [
        ("single", "single-v1-multi-turn", WRITING),
        ("single", "single-math-v1", MATH),
        ("pairwise-baseline", "pair-v2-multi-turn", WRITING),
        ("pairwise-all", "pair-math-v1-multi-turn", MATH),
    ],
)
def test_a_judge_prompt_the_mode_needs_is_refused_when_missing(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    removed: str,
    question: int,
) -> None:
    data = copy_data(tmp_path)
    prompts = data / "judge_prompts.jsonl"
    edit_jsonl(prompts, lambda p: None if p["name"] == removed else p)
    config = write_config(
        tmp_path,
        models=models_for(mode, fake),
        judge=judge_table(fake, mode),
        data=str(data),
        questions=[WRITING, MATH],
    )
    for command in ("run", "plan"):
        assert_refused(
            capsys,
            fake,
            tmp_path / "store.sqlite",
            [command, "-c", str(config)],
            str(prompts),
            repr(removed),
            f"question {question}",
        )


def test_only_the_prompts_the_selected_questions_need_are_required(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_data(tmp_path)
    edit_jsonl(data / "judge_prompts.jsonl", lambda p: None if "math" in p["name"] else p)
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge=judge_table(fake),
        data=str(data),
        questions=[WRITING],
    )
    code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out + err
    assert fake.stats(arrivals=False)["requests"] == 4  # two answers, two judgments


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (
            {"prompt_template": "[Question]\n{question}\n[Answer]\n{answer}\n{answer_3}"},
            ["{answer_3}", "FastChat never fills"],
        ),
        ({"prompt_template": "Rate {answer[9]}"}, ["cannot be formatted", "IndexError"]),
        ({"output_format": "[[score]]"}, ["output_format", "'[[score]]'", "[[rating]]"]),
    ],
    ids=["unknown-placeholder", "bad-field", "unparsed-output-format"],
)
def test_a_judge_prompt_that_cannot_be_rendered_or_parsed_is_refused(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    needles: list[str],
) -> None:
    data = copy_data(tmp_path)
    prompts = data / "judge_prompts.jsonl"
    edit_jsonl(prompts, lambda p: {**p, **change} if p["name"] == "single-v1" else p)
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge=judge_table(fake),
        data=str(data),
        questions=[WRITING],
    )
    argv = ["run", "-c", str(config)]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, str(prompts), *needles)


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (
            lambda r: {**r, "choices": [{"index": 0, "turns": r["choices"][0]["turns"][:1]}]},
            ["has 1 turn(s)", "judging turn 2 needs 2"],
        ),
        (lambda r: None, ["no reference answer for question 111"]),
    ],
    ids=["one-turn", "missing"],
)
def test_a_math_reference_answer_that_cannot_serve_both_turns_is_refused(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    edit: Any,
    needles: list[str],
) -> None:
    data = copy_data(tmp_path)
    references = data / "mt_bench" / "reference_answer" / "gpt-4.jsonl"
    edit_jsonl(references, lambda r: edit(r) if r["question_id"] == MATH else r)
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge=judge_table(fake),
        data=str(data),
        questions=[WRITING, MATH],
    )
    argv = ["run", "-c", str(config)]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, str(references), *needles)


@pytest.mark.parametrize(
    ("serve", "needles"),
    [
        ("server --model {path} --port {prot}", ["unknown placeholder {prot}"]),
        ("server --model {checkpoint} --port {port}", ["unknown placeholder {checkpoint}"]),
        ("server --model {path.stem} --port {port}", ["bad placeholder", "{path.stem}"]),
        ("server --model {path} --port {0}", ["bad placeholder", "{0}"]),
        ("server --model {path} --port 8000", ["has no {port}"]),
        ("server --model 'unbalanced --port {port}", ["split", "quotation"]),
        ("server --model same.gguf --port {port}", ["has no {path}", "same server"]),
    ],
)
def test_a_serve_command_that_cannot_start_a_reachable_server_is_refused_at_load(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    serve: str,
    needles: list[str],
) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "step-100.gguf").write_bytes(b"weights")
    sweep = {"serve": serve, "checkpoints": "ckpt/*.gguf"}
    config = write_config(tmp_path, models=[sweep], judge=judge_table(fake))
    argv = ["run", "-c", str(config)]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, str(config), "'serve'", *needles)


def test_a_serve_command_using_path_without_checkpoints_is_refused(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    served = {"name": "local", "serve": "server --model {path} --port {port}"}
    config = write_config(tmp_path, models=[served])
    argv = ["generate", "-c", str(config)]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, "uses {path}", "'checkpoints'")


@pytest.mark.parametrize(
    ("value", "needles"),
    [
        ("-1", ["'required_temperature' = -1", "from 0 to 2"]),
        ("2.5", ["'required_temperature' = 2.5", "from 0 to 2"]),
        ("true", ["'required_temperature' = True"]),
        ("NaN", ["not valid JSON"]),
    ],
)
def test_a_required_temperature_no_server_accepts_is_refused_by_file_and_line(
    tmp_path: Path,
    fake: FakeServer,
    capsys: pytest.CaptureFixture[str],
    value: str,
    needles: list[str],
) -> None:
    data = copy_data(tmp_path)
    questions = data / "mt_bench" / "question.jsonl"
    lines = questions.read_text().splitlines()
    lines[2] = lines[2][:-1] + f', "required_temperature": {value}}}'
    questions.write_text("\n".join(lines) + "\n")
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], data=str(data))
    argv = ["generate", "-c", str(config)]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, f"{questions}:3", *needles)


def test_a_required_temperature_above_one_is_refused_for_an_anthropic_model(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_data(tmp_path)
    questions = data / "mt_bench" / "question.jsonl"
    edit_jsonl(
        questions, lambda q: {**q, "required_temperature": 1.5} if q["question_id"] == 82 else q
    )
    claude = model("claude", fake.base_url, api="anthropic")
    config = write_config(tmp_path, models=[claude], data=str(data))
    argv = ["generate", "-c", str(config)]
    needles = [str(questions), "question 82", "required_temperature 1.5", "'claude'"]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, *needles)
    # forcing a temperature overrides the question's, so the same data is fine then
    config = write_config(tmp_path, models=[{**claude, "temperature": 0.5}], data=str(data))
    assert mtbench(capsys, "plan", "-c", str(config))[0] == 0


def test_an_empty_question_turn_is_refused_by_file_and_line(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_data(tmp_path)
    questions = data / "mt_bench" / "question.jsonl"
    edit_jsonl(
        questions, lambda q: {**q, "turns": [q["turns"][0], " "]} if q["question_id"] == 83 else q
    )
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], data=str(data))
    argv = ["generate", "-c", str(config)]
    assert_refused(
        capsys, fake, tmp_path / "store.sqlite", argv, f"{questions}:3", "turn 2 is empty"
    )


def test_judging_with_nothing_to_judge_is_refused(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, judge=judge_table(fake))
    argv = ["judge", "-c", str(config)]
    assert_refused(capsys, fake, tmp_path / "store.sqlite", argv, "no stored answers in")
    config = write_config(
        tmp_path, models=[model("alpha", fake.base_url)], judge=judge_table(fake, "pairwise-all")
    )
    argv = ["run", "-c", str(config)]
    assert_refused(
        capsys, fake, tmp_path / "store.sqlite", argv, "'pairwise-all'", "nothing to compare"
    )


def test_turns_answered_but_not_judged_are_named_in_plan_and_run_summary(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_data(tmp_path)
    questions = data / "mt_bench" / "question.jsonl"
    edit_jsonl(
        questions,
        lambda q: (
            {**q, "turns": [*q["turns"], "And now in French?"]}
            if q["question_id"] == WRITING
            else q
        ),
    )
    config = write_config(
        tmp_path,
        models=[model("alpha", fake.base_url)],
        judge=judge_table(fake),
        data=str(data),
        questions=[WRITING, 82],
    )
    note = "question 81 has 3 turns: all 3 are answered, only turn 1 is judged"
    code, out, _ = mtbench(capsys, "plan", "-c", str(config))
    assert code == 0 and f"note: {note}" in out
    code, out, _ = mtbench(capsys, "plan", "-c", str(config), "--json")
    assert [n.startswith(note) for n in orjson.loads(out)["notes"]] == [True]

    code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out + err
    assert f"note: {note}" in out
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        answered = db.execute("SELECT question_id, turn FROM answers ORDER BY 1, 2").fetchall()
        judged = db.execute("SELECT question_id, turn FROM judgments ORDER BY 1, 2").fetchall()
    assert answered == [(81, 1), (81, 2), (81, 3), (82, 1), (82, 2)]
    assert judged == [(81, 1), (82, 1), (82, 2)]
