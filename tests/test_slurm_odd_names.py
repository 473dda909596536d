"""Checkpoints whose names are odd (quotes, dollars, percent signs, spaces, a leading dash, unicode)
served as Slurm jobs, against the real one-node cluster of tests/support/slurm_cluster.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.runconfig import mtbench
from tests.support.slurm_cluster import SlurmCluster
from tests.test_slurm import counts, slurm_sweep


def test_a_checkpoint_named_with_a_lone_quote_a_backtick_a_dash_and_unicode_is_served(
    tmp_path: Path, fake: FakeServer, slurm: SlurmCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    name = '-stép "1 `echo x` 50%j $HOME'
    config, _ = slurm_sweep(tmp_path, fake, [name], server_slots=1)
    code, out, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out + err
    assert counts(tmp_path / "store.sqlite", "answers") == {name: 4}
    assert slurm.jobs() == []
