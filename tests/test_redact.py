"""Known keys are masked in any text, log record or stream the engine writes."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import pytest

from engine.redact import (
    FRAGMENT_LENGTH,
    RedactingStream,
    redact,
    redact_fields,
    redact_log_records,
    register_secret,
)


def test_a_registered_key_is_masked_with_the_name_of_its_variable_also_in_its_bearer_form() -> None:
    key = "sk-unit-AAAA1111BBBB2222CCCC3333"
    register_secret(key, "UNIT_KEY_A")
    text = f'Incorrect key {key}; "Bearer {key}"'
    assert redact(text) == 'Incorrect key [redacted $UNIT_KEY_A]; "Bearer [redacted $UNIT_KEY_A]"'


def test_placeholder_keys_are_not_secrets_and_words_stay_as_they_are() -> None:
    register_secret("EMPTY", "UNIT_PLACEHOLDER")
    assert redact("EMPTY handed; an EMPTY string") == "EMPTY handed; an EMPTY string"


def test_a_key_cut_short_at_either_end_is_masked_from_a_dozen_characters_on() -> None:
    key = "sk-unit-DDDD4444EEEE5555FFFF6666"
    register_secret(key, "UNIT_KEY_B")
    cut_end = f"body {key[:20]}'"
    cut_start = f"...{key[-FRAGMENT_LENGTH:]} rest"
    too_short = f"prefix {key[: FRAGMENT_LENGTH - 1]} only"
    assert redact(cut_end) == "body [redacted part of $UNIT_KEY_B]'"
    assert redact(cut_start) == "...[redacted part of $UNIT_KEY_B] rest"
    assert redact(too_short) == too_short


def test_a_key_that_contains_another_key_is_masked_whole() -> None:
    register_secret("sk-unit-GGGG7777HHHH", "UNIT_INNER")
    register_secret("org-sk-unit-GGGG7777HHHH-team", "UNIT_OUTER")
    assert redact("x org-sk-unit-GGGG7777HHHH-team y") == "x [redacted $UNIT_OUTER] y"


@dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str | None


def test_only_the_named_fields_of_a_value_are_redacted_and_a_clean_value_is_kept_as_is() -> None:
    register_secret("sk-unit-IIII8888JJJJ9999", "UNIT_KEY_C")
    clean = Reply("hello", "stop")
    assert redact_fields(clean, "text", "finish_reason") is clean
    leaky = Reply("echo sk-unit-IIII8888JJJJ9999", None)
    assert redact_fields(leaky, "text", "finish_reason") == Reply(
        "echo [redacted $UNIT_KEY_C]", None
    )


def test_log_records_of_any_logger_reach_any_handler_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_secret("sk-unit-KKKK0000LLLL1111", "UNIT_KEY_D")
    redact_log_records()
    redact_log_records()  # idempotent: one wrapper, not two
    caplog.set_level(logging.DEBUG)
    child = logging.getLogger("engine.unit.child")
    child.error("server said %s", "bad key sk-unit-KKKK0000LLLL1111")
    try:
        raise ValueError("echoed sk-unit-KKKK0000LLLL1111")
    except ValueError:
        child.exception("failed")
    assert "sk-unit-KKKK0000LLLL1111" not in caplog.text
    assert "bad key [redacted $UNIT_KEY_D]" in caplog.text
    assert "ValueError: echoed [redacted $UNIT_KEY_D]" in caplog.text


def test_a_redacting_stream_masks_what_is_written_and_is_otherwise_its_stream() -> None:
    register_secret("sk-unit-MMMM2222NNNN3333", "UNIT_KEY_E")
    target = io.StringIO()
    stream = RedactingStream(target)
    print("key sk-unit-MMMM2222NNNN3333", file=stream)
    stream.writelines(["sk-unit-MMMM2222NNNN3333\n"])
    assert target.getvalue() == "key [redacted $UNIT_KEY_E]\n[redacted $UNIT_KEY_E]\n"
    assert stream.isatty() is False and stream.getvalue() == target.getvalue()
