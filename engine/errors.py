"""The engine's error hierarchy, so the CLI can turn any failure into one line and an exit code.

MtbenchError                  anything the user can act on; str() is the one-line message
├── InputError                exit 2: nothing was sent, nothing stored was touched
│   ├── ConfigError           bad TOML, unknown key, wrong type, unset API-key variable
│   ├── DataError             missing or malformed data file, checksum mismatch
│   ├── StoreError            not an mtbench store, newer schema, store busy, no access
│   │   └── StoreBusy         another process holds the writer lock (a watcher waits instead)
│   └── LocalModelError       (engine.serving.serve_gguf) llama.cpp or SmolLM2 is not installed
├── StoreWriteError           exit 3: the store failed during a run (disk full, read-only, I/O,
│                             lock timeout); everything committed is kept, a rerun resumes
├── InternalError             exit 1: the engine's own machinery failed (a bug); the run stopped
├── RequestError              one HTTP attempt failed
│   ├── RetryableError        429, 5xx, timeouts, resets, malformed bodies: try again
│   └── FatalRequestError     400/422 (this request is wrong) or 401/403/404 (the endpoint is)
├── ServerFailed              a model server the engine started exited or never got ready
├── RunStopped                (engine.run.control) the caller stopped the run: all received kept
│   (engine.cli.signals.Interrupted, the CLI's: SIGINT/SIGTERM/SIGHUP, exit 130/143/129)
"""

from __future__ import annotations

from engine.redact import redact

__all__ = [
    "ConfigError",
    "DataError",
    "FatalRequestError",
    "InputError",
    "InternalError",
    "MtbenchError",
    "RequestError",
    "RetryableError",
    "ServerFailed",
    "StoreBusy",
    "StoreError",
    "StoreWriteError",
]


class MtbenchError(Exception):
    """Base class: a failure with a message meant for the user."""

    exit_code = 1


class InputError(MtbenchError):
    """Bad input detected before any request is sent."""

    exit_code = 2


class ConfigError(InputError):
    """The run config is invalid."""


class DataError(InputError):
    """A benchmark data file is missing, malformed or fails its checksum."""


class StoreError(InputError):
    """The SQLite store cannot be used."""


class StoreBusy(StoreError):
    """Another process holds the store's writer lock; `reason` says so in a few words."""

    def __init__(self, store: object, holder: str) -> None:
        self.reason = f"store busy: another mtbench run (pid {holder}) is writing it"
        super().__init__(
            f"{store}: another mtbench run is writing to this store (pid {holder}); "
            "wait for it to finish or use another store"
        )


class StoreWriteError(MtbenchError):
    """The store could not be read or written while a run was going; the run stopped."""

    exit_code = 3


class InternalError(MtbenchError):
    """An unexpected exception broke the run's machinery (not one job); the run stopped."""


class RequestError(MtbenchError):
    """One HTTP attempt failed.

    `error_class` is a short stable name (`rate_limit`, `server_error`, `timeout`, ...) used in
    failure summaries; `retry_after` is the server's requested wait in seconds, if it gave one.
    The message often quotes the server, which may quote the key: it is stored with every known
    key masked (`engine.redact`).
    """

    def __init__(
        self,
        error_class: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(redact(message))
        self.error_class = error_class
        self.status = status
        self.retry_after = retry_after


class RetryableError(RequestError):
    """Worth another attempt after a backoff."""


class FatalRequestError(RequestError):
    """Retrying cannot help. `endpoint_fatal` means no request to this endpoint can succeed."""

    def __init__(
        self, error_class: str, message: str, *, status: int | None = None, endpoint_fatal: bool
    ) -> None:
        super().__init__(error_class, message, status=status)
        self.endpoint_fatal = endpoint_fatal


class ServerFailed(MtbenchError):
    """A model server exited before it was ready, or was not ready within its timeout."""
