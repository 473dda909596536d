"""GPU slots on one machine: each server slot owns fixed GPUs, and a checkpoint may have replicas.

No GPU is needed: the outer CUDA_VISIBLE_DEVICES is what the engine carves, and the servers are
fake servers that record the CUDA_VISIBLE_DEVICES and placeholders they were started with.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shlex
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.config import load_config
from engine.errors import ConfigError
from engine.serving.gpus import carve_slots, local_slot_gpus, visible_gpus
from engine.serving.slots import SlotPool
from tests.support.gpu_server import COMMAND as GPU_SERVER
from tests.support.runconfig import mtbench, write_config
from tests.support.served_fake import checkpoint_folder

OUTER_GPUS = "3,5,6,7"


def served_model(
    tmp_path: Path, checkpoints: list[str], **keys: Any
) -> tuple[dict[str, Any], Path]:
    checkpoint_folder(tmp_path, checkpoints)
    events = tmp_path / "events.jsonl"
    serve = (
        f"{GPU_SERVER} {shlex.quote(str(events))} {{path}} --gpus {{gpus}} "
        "--num-gpus {num_gpus} --port {port} --latency-median 0.01"
    )
    return {"serve": serve, "checkpoints": "checkpoints/*.bin", "concurrency": 4, **keys}, events


def read_events(events: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in events.read_bytes().splitlines()]


def lifetimes(events: list[dict[str, Any]]) -> list[tuple[str, float, float, dict[str, Any]]]:
    """(GPU set, start, stop, start event) per server process."""
    starts = {e["pid"]: e for e in events if e["event"] == "start"}
    stops = {e["pid"]: e for e in events if e["event"] == "stop"}
    return [(s["cuda"], s["t"], stops[pid]["t"], s) for pid, s in starts.items()]


def test_four_checkpoints_on_two_slots_of_two_gpus_each_never_share_a_gpu_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", OUTER_GPUS)
    model, events = served_model(
        tmp_path, ["step-1", "step-2", "step-3", "step-4"], gpus_per_server=2
    )
    config = write_config(tmp_path, models=[model], questions=[81, 82], server_slots=2)
    progress = ("--progress", "plain", "--progress-interval", "0.1")
    code, out, err = mtbench(capsys, "generate", "-c", str(config), *progress)
    assert code == 0, out
    shown = re.findall(r"progress step-\d: server (?:starting|serving) on GPUs (\S+) \(pid", err)
    assert shown and set(shown) <= {"3,5", "6,7"}, err

    servers = lifetimes(read_events(events))
    assert len(servers) == 4
    for gpus, _, _, start in servers:
        assert gpus in ("3,5", "6,7")  # physical ids of the outer mask, never 0,1 / 2,3
        assert start["gpus"] == gpus  # {gpus}
        assert start["num_gpus"] == "2"  # {num_gpus}
    for gpus in ("3,5", "6,7"):
        spans = sorted((begin, end) for g, begin, end, _ in servers if g == gpus)
        assert all(end <= later for (_, end), (later, _) in itertools.pairwise(spans))


def test_server_slots_default_to_what_the_visible_gpus_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", OUTER_GPUS)
    model, _ = served_model(tmp_path, ["step-1"], gpus_per_server=2)
    config = load_config(write_config(tmp_path, models=[model]))
    slots = local_slot_gpus(config.source, config.models, config.server_slots, visible_gpus())
    assert slots == (("3", "5"), ("6", "7"))


def test_replicas_serve_one_checkpoint_on_two_gpu_sets_and_both_get_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", OUTER_GPUS)
    model, events = served_model(tmp_path, ["step-1"], gpus_per_server=2, replicas=2)
    config = write_config(tmp_path, models=[model], questions=[81, 82, 83, 84, 85, 86])
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out

    recorded = read_events(events)
    assert sorted(e["cuda"] for e in recorded if e["event"] == "start") == ["3,5", "6,7"]
    answered = [e["requests"] for e in recorded if e["event"] == "stop"]
    assert len(answered) == 2 and all(n > 0 for n in answered), answered
    assert sum(answered) == 12  # six questions, two turns


@pytest.mark.parametrize(
    ("visible", "keys", "top", "words"),
    [
        (OUTER_GPUS, {"gpus_per_server": 8}, {}, ["'gpus_per_server' = 8", "only 4 GPU(s)"]),
        (OUTER_GPUS, {"gpus_per_server": 2}, {"server_slots": 3}, ["'server_slots' = 3", "need 6"]),
        (OUTER_GPUS, {"replicas": 5}, {}, ["'replicas' = 5", "only 4 server slot(s)"]),
        ("", {"gpus_per_server": 1}, {}, ["'gpus_per_server'", "none is visible"]),
    ],
)
def test_asking_for_more_gpus_or_slots_than_there_are_is_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    visible: str,
    keys: dict[str, Any],
    top: dict[str, Any],
    words: list[str],
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    model, events = served_model(tmp_path, ["step-1"], **keys)
    config = write_config(tmp_path, models=[model], questions=[81], **top)
    code, _, err = mtbench(capsys, "generate", "-c", str(config))
    assert code == 2
    line = err.strip()
    assert "\n" not in line and all(word in line for word in words), line
    assert not (tmp_path / "store.sqlite").exists() and not (tmp_path / "servers").exists()
    assert not events.exists()


def test_gpu_placeholders_without_visible_gpus_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    model, _ = served_model(tmp_path, ["step-1"])  # its command uses {gpus}
    config = load_config(write_config(tmp_path, models=[model]))
    with pytest.raises(ConfigError, match="key 'serve' asks for GPUs"):
        local_slot_gpus(config.source, config.models, None, visible_gpus())


def test_visible_gpus_come_from_the_outer_mask_as_written_else_from_the_machine() -> None:
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "3, 5,6"}, listed=["0", "1"]) == ("3", "5", "6")
    uuids = "GPU-8e2a,GPU-11f0"
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": uuids}) == ("GPU-8e2a", "GPU-11f0")
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,-1,3"}) == ("2",)  # CUDA stops at -1
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, listed=["0"]) == ()
    assert visible_gpus({}, listed=["0", "1"]) == ("0", "1")
    assert carve_slots(("3", "5", "6", "7", "9"), 2, 2) == (("3", "5"), ("6", "7"))


def test_a_slot_pool_gives_k_slots_at_once_first_come_first_served() -> None:
    async def scenario() -> list[tuple[str, tuple[int, ...]]]:
        pool = SlotPool([("0",), ("1",), ("2",)])
        granted: list[tuple[str, tuple[int, ...]]] = []

        async def holder(name: str, count: int, hold: float) -> None:
            taken = await pool.take(count)
            granted.append((name, taken))
            await asyncio.sleep(hold)
            pool.give_back(taken)

        first = asyncio.create_task(holder("first", 2, 0.05))
        await asyncio.sleep(0)
        pair = asyncio.create_task(holder("pair", 2, 0.01))  # waits for two
        await asyncio.sleep(0)
        single = asyncio.create_task(holder("single", 1, 0.01))  # behind it, though one is free
        await asyncio.gather(first, pair, single)
        return granted

    granted = asyncio.run(scenario())
    assert [name for name, _ in granted] == ["first", "pair", "single"]
    assert all(len(set(taken)) == len(taken) for _, taken in granted)


def readme_sweep_configs() -> list[str]:
    """The TOML blocks of the README's two sweep sections."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = []
    for title in ("Sweeps on a multi-GPU machine", "Sweeps on a Slurm cluster"):
        section = re.split(r"\n##+ ", readme.split(f"\n### {title}\n", 1)[1], maxsplit=1)[0]
        blocks += re.findall(r"```toml\n(.*?)```", section, re.S)
    return blocks


def test_the_readme_sweep_configs_load_and_fit_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "readme-openai-key-Q3v9Lm")
    for step in (100, 200):
        (tmp_path / "ckpts" / f"step-{step}").mkdir(parents=True)
    multi_gpu, slurm = readme_sweep_configs()
    path = tmp_path / "run.toml"
    loaded = []
    for block in (multi_gpu, slurm):
        block = re.sub(r'"/(shared/)?ckpts/run-7/step-\*"', '"ckpts/step-*"', block)
        path.write_text(f'store = "store.sqlite"\n{block}')
        loaded.append(load_config(path))

    local = loaded[0]
    eight = [str(gpu) for gpu in range(8)]
    slots = local_slot_gpus(local.source, local.models, local.server_slots, eight)
    assert slots == (("0", "1"), ("2", "3"), ("4", "5"), ("6", "7"))
    final = local.models[-1]
    assert (final.name, final.replicas, final.gpus_per_server) == ("final", 4, 2)

    on_slurm = loaded[1]
    assert on_slurm.server_slots == 8
    step = on_slurm.models[0]
    assert step.launcher == "slurm" and step.slurm is not None
    assert (step.slurm.partition, step.slurm.time, step.slurm.mem) == ("gpu", "02:00:00", "64G")
    assert step.slurm.extra_args == ("--constraint=a100", "--qos=normal")


@pytest.mark.parametrize(
    ("model_keys", "top", "words"),
    [
        ({"gpus_per_server": 2}, {}, ["'gpus_per_server' = 2", "add serve"]),
        ({"replicas": 2}, {}, ["'replicas' = 2", "add serve"]),
        ({"launcher": "k8s"}, {}, ["'launcher' = 'k8s'", "one of local, slurm"]),
        ({}, {"launcher": "pbs"}, ["top-level key 'launcher' = 'pbs'"]),
        ({}, {"slurm": {"gres": "gpu:2", "gpus": 2}}, ["[slurm] key 'gpus'", "either gres"]),
        ({}, {"slurm": {"partiton": "gpu"}}, ["[slurm] key 'partiton'", "unknown key"]),
        ({}, {"slurm": {"extra_args": "--exclusive"}}, ["'extra_args'", "a list of sbatch"]),
    ],
)
def test_serving_keys_and_slurm_options_are_checked_at_load(
    tmp_path: Path, model_keys: dict[str, Any], top: dict[str, Any], words: list[str]
) -> None:
    model = {"name": "alpha", "base_url": "http://127.0.0.1:9/v1", **model_keys}
    config = write_config(tmp_path, models=[model], **top)
    with pytest.raises(ConfigError) as error:
        load_config(config)
    message = str(error.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_a_repeated_gpu_in_the_outer_mask_is_one_gpu_and_never_two_slots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "6,6, 7,7")
    model, events = served_model(tmp_path, ["step-1", "step-2"])
    config = write_config(tmp_path, models=[model], questions=[81])
    code, out, _ = mtbench(capsys, "generate", "-c", str(config))
    assert code == 0, out
    assert sorted(e["cuda"] for e in read_events(events) if e["event"] == "start") == ["6", "7"]
    with pytest.raises(ConfigError, match=r"need 2, and 1 GPU\(s\) \(6\) are"):
        local_slot_gpus(
            "c", load_config(config).models, 2, visible_gpus({"CUDA_VISIBLE_DEVICES": "6,6"})
        )


def test_an_outer_mask_entry_cuda_rejects_ends_the_list_as_it_does_for_cuda() -> None:
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, listed=["0"]) == ()
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "MIG-4a1f,1,gpu0,2"}) == ("MIG-4a1f", "1")
