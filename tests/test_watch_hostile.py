"""Watch mode against a hostile world: what a training job, a filesystem and an impatient user do
to a watcher that runs all night (issue 14, watch mode; README "Watch mode").

Each test is one way the watcher used to stop, hang or score the wrong thing, found by attacking
it: bad input found only when the first checkpoint lands, labels two matches share, files it may
not read, a store another command holds, checkpoints still being written when --until-idle
ran out, signals from a closed terminal.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import mtbench
from tests.test_watch import watch_config

WATCH = ("--watch", "--poll", "0.1", "--progress", "plain")


def test_what_the_first_run_would_refuse_is_refused_before_the_first_checkpoint_lands(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The glob matches nothing yet, and the trainer's first checkpoint is hours away: a wrong
    data dir, question, GPU count or store path used to surface only then, as exit 2."""
    (tmp_path / "checkpoints").mkdir()
    config, _ = watch_config(tmp_path, fake)
    flags = (*WATCH, "--until-idle", "1h")
    started = time.monotonic()
    code, _, err = mtbench(capsys, "run", "-c", str(config), *flags, "--data", str(tmp_path))
    assert code == 2
    assert "question.jsonl: file not found" in err

    config, _ = watch_config(tmp_path, fake, gpus_per_server=2)
    code, _, err = mtbench(capsys, "run", "-c", str(config), *flags)
    assert code == 2
    assert "[[model]] 'step-*' key 'gpus_per_server' asks for GPUs" in err

    (tmp_path / "not-a-dir").write_text("")
    config, _ = watch_config(tmp_path, fake)
    text = config.read_text().replace("store.sqlite", "not-a-dir/store.sqlite")
    config.write_text(text)
    code, _, err = mtbench(capsys, "run", "-c", str(config), *flags)
    assert code == 2
    assert "not-a-dir is a file, not a directory" in err
    assert time.monotonic() - started < 30  # not an hour: refused at once
    assert not (tmp_path / "store.sqlite").exists()
