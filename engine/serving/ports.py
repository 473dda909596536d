"""Ports for local model servers, and how to tell a start lost to a taken port from a broken model.

The engine picks a port and the server binds it a moment later, so someone else can take it in
between. Outgoing connections are the usual culprit (this engine's own among them: hundreds of
requests to endpoints and judges), and the kernel gives those ports only from its ephemeral range
(`ip_local_port_range`). So ports are drawn at random between 10000 and the start of that range,
where only a listener can hold one, as the Slurm job script does on its node
(`engine.serving.slurm_script`). Another program may still bind a drawn port first: a server that
then exits saying so in its output is started again on another port (`PORT_ATTEMPTS` in all), and
only a failure of the last attempt fails the model.
"""

from __future__ import annotations

import logging
import random
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from engine.errors import ServerFailed

__all__ = [
    "PORT_ATTEMPTS",
    "PORT_FLOOR",
    "PortTaken",
    "ephemeral_start",
    "free_port",
    "listening",
    "lost_its_port",
    "retry_lost_ports",
]

logger = logging.getLogger(__name__)

PORT_FLOOR = 10000  # below: ports of well-known services (and 8000/8080, which users pick)
PORT_ATTEMPTS = 3
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LINUX_EPHEMERAL_START = 32768  # the default where the range cannot be read
_DRAWS = 200
# What servers print when their port is taken: Python (uvicorn, aiohttp, http.server) and Rust
# servers say "Address already in use" (errno 98 on Linux, 48 on macOS); llama.cpp's server says
# that it "couldn't bind HTTP server socket".
_ADDRESS_IN_USE = re.compile(
    r"address already in use|EADDRINUSE|couldn't bind HTTP server socket", re.IGNORECASE
)


class PortTaken(ServerFailed):
    """The port a server was to listen on had a listener before the server was started."""


def ephemeral_start() -> int:
    """The first port the kernel may give an outgoing connection; 65536 if all of them above
    `PORT_FLOOR` might be (a range that starts that low leaves no port out of its way)."""
    try:
        start = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, IndexError, ValueError):
        start = _LINUX_EPHEMERAL_START
    return start if start > PORT_FLOOR + 1024 else 65536


def free_port(host: str = "127.0.0.1", draw: random.Random | None = None) -> int:
    """A random port below the ephemeral range that can be bound on `host` right now.

    `draw` is the random source (a seeded one in tests); ServerFailed if 200 draws found none."""
    draw = draw or random.SystemRandom()
    ceiling = ephemeral_start()
    for _ in range(_DRAWS):
        candidate = draw.randrange(PORT_FLOOR, ceiling)
        if _bindable(host, candidate):
            return candidate
    raise ServerFailed(
        f"found no free port on {host} between {PORT_FLOOR} and {ceiling} in {_DRAWS} draws; "
        "stop some of the programs listening there"
    )


def lost_its_port(output: Iterable[str]) -> bool:
    """Whether a server's last output says that its port was taken."""
    return any(_ADDRESS_IN_USE.search(line) for line in output)


async def retry_lost_ports(
    attempt: Callable[[], Awaitable[str]], output: Callable[[], Iterable[str]], port_picked: bool
) -> str:
    """`attempt()` (which starts a server and returns its URL), again while it fails because its
    port was taken (`output()`: that server's last lines), `PORT_ATTEMPTS` times in all. Once only
    for a port the user chose (`port_picked` False): another one would not be the one they meant.
    """
    retries = PORT_ATTEMPTS - 1 if port_picked else 0
    while True:
        try:
            return await attempt()
        except ServerFailed as failure:
            if retries <= 0 or not (isinstance(failure, PortTaken) or lost_its_port(output())):
                raise
            logger.warning(
                "%s; starting it again on another port", str(failure).splitlines()[0].rstrip(":")
            )
        retries -= 1


def listening(host: str, port: int) -> bool:
    """Whether a server answers connections on `host`:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def _bindable(host: str, port: int) -> bool:
    # Binding, not connecting: a socket bound but not (yet) listening refuses connections, yet
    # the server's own bind would fail on it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
