"""What our exported judgment lines add to FastChat's fields, read back with `file:line` errors.

Export writes each line's judge sample and the judge's full identity (`judge_identity`: label,
model string, API), and the judge's reasoning settings (`judge_settings`), which FastChat's tools
ignore. Import reads them so that the samples of a repeated judging, and two judges sharing a
label, stay apart on the way back in, and the settings stay shown with the scores; a FastChat line
without them is judge label, sample 0 and no settings, as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from engine.errors import DataError
from engine.store.rows import IMPORT_API

__all__ = ["IMPORT_API", "judge_model_field", "judge_settings_field", "sample_field"]


def sample_field(path: Path, number: int, obj: dict[str, Any]) -> int:
    sample = obj.get("sample", 0)
    if sample is None:
        return 0
    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
        raise DataError(
            f"{path}:{number}: field 'sample' is {sample!r}; give a whole number from 0"
        )
    return sample


def judge_settings_field(path: Path, number: int, obj: dict[str, Any]) -> str | None:
    """The judge's reasoning settings as `judgments.judge_settings` stores them, if the line has
    them (e.g. `{"reasoning": true, "reasoning_effort": "high"}`)."""
    settings = obj.get("judge_settings")
    if settings is None:
        return None
    if not isinstance(settings, dict):
        raise DataError(f"{path}:{number}: field 'judge_settings' must be an object")
    return orjson.dumps(settings, option=orjson.OPT_SORT_KEYS).decode()


def judge_model_field(path: Path, number: int, obj: dict[str, Any], judge: str) -> str:
    """The judge's model string from our export's `judge_identity`, else (FastChat) its label.

    Two judges sharing a label (GPT-4 through two model strings) export to two files; keeping
    the model string keeps them apart on the way back in.
    """
    identity = obj.get("judge_identity")
    if not isinstance(identity, dict) or identity.get("name") != judge:
        return judge
    model = identity.get("model")
    if not isinstance(model, str) or not model:
        raise DataError(f"{path}:{number}: field 'judge_identity.model' must be a non-empty string")
    api = identity.get("api")
    # Judgments imported before keep their import identity, as they were stored.
    return model if api in (None, IMPORT_API) else f"{model} ({api})"
