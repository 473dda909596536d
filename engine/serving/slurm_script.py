"""The batch script and sbatch arguments of one model server run as a Slurm job.

The server's port must be free on the node Slurm picks, which the engine cannot know when it
submits. So the script picks it there: it tries random ports between 10000 and the start of the
node's ephemeral range (the kernel gives client sockets no port there, so only a listener can
hold one) until one has no listener, writes `<host> <port> <nonce>` to an address file in the
store's `servers/` directory (a shared filesystem, as a cluster's home or project directories are;
the rename makes the file appear whole), and then `exec`s the serve command with that port. The
engine reads the file once the job runs and probes the node's address (`NodeAddr`) at that port.
The file is named by the job id, which a cluster whose controller restarted afresh gives again: the
nonce, new for each submission, tells the engine's own job's file from a file an earlier job left.
`{gpus}` becomes the job's own `CUDA_VISIBLE_DEVICES`, which Slurm sets from its GPU allocation.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from engine.config import SlurmOptions
from engine.serving.serve import ServerSpec

__all__ = ["JOB_NAME_PREFIX", "address_file", "job_script", "output_file", "sbatch_arguments"]

JOB_NAME_PREFIX = "mtbench-"
# Stand-ins for what only the job knows, replaced by shell variables in the script.
_PORT = "MTBENCHPORTxq7"
_GPUS = "MTBENCHGPUSxq7"
_SHELL_VALUES = {_PORT: '"$port"', _GPUS: '"$gpus"'}

_TEMPLATE = """#!/bin/bash
# Written by mtbench: serves {comment} as Slurm job $SLURM_JOB_ID. Safe to delete.
set -u
address_file={address}
# Below the ephemeral range, where no client socket is ever given a port: only listeners count.
read -r ephemeral _ < /proc/sys/net/ipv4/ip_local_port_range || ephemeral=32768
[ "$ephemeral" -gt 11024 ] || ephemeral=65536
port=""
for attempt in $(seq 1 200); do
    candidate=$(( 10000 + (RANDOM * 32768 + RANDOM) % (ephemeral - 10000) ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        port=$candidate
        break
    fi
done
if [ -z "$port" ]; then
    echo "mtbench: found no free port on $(hostname) in 200 tries" >&2
    exit 1
fi
gpus="${{CUDA_VISIBLE_DEVICES:-}}"
printf '%s %s %s\\n' "$(hostname)" "$port" {nonce} > "$address_file.tmp"
mv "$address_file.tmp" "$address_file"
echo "mtbench: serving "{name}" on $(hostname) port $port, GPUs: ${{gpus:-none}}"
exec {command}
"""


def output_file(directory: Path, label: str) -> str:
    """The job's output file, as sbatch's `--output` pattern (`%j`: the job id; any other `%`,
    as in a directory named `100%`, doubled so that Slurm writes it as it stands)."""
    return str(directory / label).replace("%", "%%") + ".slurm-%j.log"


def address_file(directory: Path, label: str, job_id: str) -> Path:
    return directory / f"{label}.slurm-{job_id}.address"


def job_script(spec: ServerSpec, directory: Path, label: str, nonce: str) -> str:
    """The batch script that picks a port, reports it (with `nonce`) and becomes the server."""
    words = spec.argv(_PORT, gpus=_GPUS)
    address = shlex.quote(str(directory / f"{label}.slurm-")) + '"$SLURM_JOB_ID".address'
    return _TEMPLATE.format(
        comment=" ".join(spec.name.split()),  # one comment line, whatever the name holds
        name=shlex.quote(spec.name),  # a word of its own: quotes or backticks in it stay text
        address=address,
        nonce=shlex.quote(nonce),
        command=" ".join(_shell_word(word) for word in words),
    )


def sbatch_arguments(
    options: SlurmOptions, *, job_name: str, output: str, gpus_per_server: int
) -> list[str]:
    """sbatch's options for one server: the `[slurm]` table, and GPUs by `gpus_per_server`
    unless the table asks for them itself (gres or gpus)."""
    arguments = [
        "--parsable",
        f"--job-name={job_name}",
        f"--output={output}",
        "--open-mode=append",
    ]
    if options.gres is not None:
        arguments.append(f"--gres={options.gres}")
    elif options.gpus is not None:
        arguments.append(f"--gpus={options.gpus}")
    elif gpus_per_server > 0:
        arguments.append(f"--gres=gpu:{gpus_per_server}")
    named = {
        "partition": options.partition,
        "time": options.time,
        "account": options.account,
        "qos": options.qos,
        "cpus-per-task": options.cpus_per_task,
        "mem": options.mem,
    }
    arguments += [f"--{flag}={value}" for flag, value in named.items() if value is not None]
    return [*arguments, *options.extra_args]


def _shell_word(word: str) -> str:
    """`word` quoted for bash, with the job's own values spliced in where they stand."""
    pieces: list[str] = [word]
    for stand_in, variable in _SHELL_VALUES.items():
        pieces = [part for piece in pieces for part in _split_keeping(piece, stand_in, variable)]
    quoted = "".join(p if p in _SHELL_VALUES.values() else shlex.quote(p) for p in pieces if p)
    return quoted or "''"


def _split_keeping(piece: str, stand_in: str, variable: str) -> list[str]:
    if piece in _SHELL_VALUES.values():
        return [piece]
    parts = piece.split(stand_in)
    joined: list[str] = []
    for index, part in enumerate(parts):
        if index:
            joined.append(variable)
        joined.append(part)
    return joined
