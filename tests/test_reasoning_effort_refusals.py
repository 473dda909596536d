"""A reasoning model that takes `reasoning_effort`, but not the value configured, is told so.

OpenAI answers an effort a model does not offer (`minimal` on o3-mini, `none` on gpt-5, `xhigh`
on most) with `400 Unsupported value: 'reasoning_effort' does not support 'xhigh' with this
model. Supported values are: ...`; a model that takes no effort at all says `Unsupported
parameter`. Only the second calls for removing the key; the first for another value.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, write_config
from tests.support.scripted import json_reply, run_engine


def refusal(kind: str) -> dict[str, object]:
    what = "does not support 'xhigh'" if kind == "value" else "is not supported"
    message = f"Unsupported {kind}: 'reasoning_effort' {what} with this model."
    return {"error": {"message": message, "type": "invalid_request_error", "param": None}}


@pytest.mark.parametrize(
    ("kind", "advice"),
    [
        ("value", "set reasoning_effort on [[model]] 'm' to a value it supports"),
        ("parameter", "remove it from [[model]] 'm'"),
    ],
)
def test_an_effort_the_model_does_not_offer_is_told_apart_from_no_effort_at_all(
    tmp_path: Path, fake: FakeServer, kind: str, advice: str
) -> None:
    fake.script([json_reply(refusal(kind), status=400)])
    options = {"model": "o3-mini", "reasoning_effort": "xhigh", "timeout": 5.0}
    config = write_config(tmp_path, models=[model("m", fake.base_url, **options)], questions=[81])
    assert run_engine(config) == 1
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        (message,) = db.execute("SELECT message FROM failures WHERE turn = 1").fetchone()
    assert message.endswith(advice), message
    assert fake.scripted_requests() == 1  # every request would carry it: the endpoint stops
