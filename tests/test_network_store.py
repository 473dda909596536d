"""A store on a network filesystem (NFS, Lustre, ...) is refused for writing, with one line.

No network filesystem is needed: the filesystem type check (`engine.store.netfs.filesystem_type`)
is stood in for by one that answers a network filesystem's magic number; the real one is checked
against `stat -f` on this machine's own disk.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from engine.store import netfs
from tests.support.fakeserver import FakeServer
from tests.support.runconfig import model, mtbench, write_config

NFS, LUSTRE = 0x6969, 0x0BD00BD0


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


@pytest.mark.parametrize(("magic", "kind"), [(NFS, "NFS"), (LUSTRE, "Lustre")])
def test_a_new_store_on_a_network_filesystem_is_refused_before_anything_is_created(
    tmp_path: Path,
    fake: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    magic: int,
    kind: str,
) -> None:
    config = write_config(tmp_path, models=[model("alpha", fake.base_url)], questions=[81])
    monkeypatch.setattr(netfs, "filesystem_type", lambda path: magic)
    before = files(tmp_path)
    code, _, err = mtbench(capsys, "generate", "-c", str(config))
    assert code == 2
    line = err.strip()
    assert "\n" not in line
    assert str(tmp_path / "store.sqlite") in line and f"network filesystem ({kind})" in line
    assert "local disk" in line
    assert files(tmp_path) == before and not (tmp_path / "servers").exists()
    assert fake.stats()["requests"] == 0


def test_an_existing_store_on_a_network_filesystem_is_left_untouched_and_can_still_be_read(
    tmp_path: Path,
    fake: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    judge = {"name": "judge-a", "base_url": fake.base_url}
    config = write_config(
        tmp_path, models=[model("alpha", fake.base_url)], judge=judge, questions=[81]
    )
    code, out, _ = mtbench(capsys, "run", "-c", str(config))
    assert code == 0, out
    before = files(tmp_path)

    monkeypatch.setattr(netfs, "filesystem_type", lambda path: NFS)
    code, _, err = mtbench(capsys, "run", "-c", str(config))
    assert code == 2 and "network filesystem (NFS)" in err
    assert files(tmp_path) == before
    code, out, err = mtbench(capsys, "show", "--store", str(tmp_path / "store.sqlite"))
    assert code == 0 and "alpha" in out, err  # reading is not writing


def test_a_store_on_a_local_disk_is_not_mistaken_for_a_network_one(tmp_path: Path) -> None:
    magic = netfs.filesystem_type(tmp_path)
    assert magic is not None and magic not in netfs.NETWORK_FILESYSTEMS
    if shutil.which("stat") is not None:
        shown = subprocess.run(
            ["stat", "-f", "-c", "%t", str(tmp_path)], capture_output=True, text=True, check=True
        )
        assert magic == int(shown.stdout.strip(), 16)
    netfs.check_local_filesystem(tmp_path / "not-yet" / "store.sqlite")  # its parent's disk
