"""File names for model and judge labels in FastChat's layout, and the way back to the label.

FastChat names a model after its answer file. A label is not always a usable file name: `a/b`
would escape its folder, `..` is no file, control characters and very long names break shells and
file systems, a right-to-left override or a zero-width space makes `ls` show another name, and
`Alpha` and `alpha` are one file on a case-insensitive disk. Such a label gets a sanitized stem
with a hash of the real label appended (`a_b-1f2e3d4c`), so it can never collide with a label that
needed no change (`a_b` stays `a_b`) or with another sanitized one. Export also writes the real
label into every line of such a file, and import takes it back when the stem is the one export
would have made for it; a file renamed by hand keeps FastChat's rule (the stem wins).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from engine.errors import DataError

__all__ = ["file_stems", "label_for_stem", "refuse_duplicate_labels"]

# Path separators, NUL, C0/C1 controls and DEL; a name made only of dots is no file name either.
_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f-\x9f]")
# Characters that are invisible or move other text where a file name is shown (`ls`, a shell's
# completion): bidi overrides, zero-width characters, line and paragraph separators, surrogates.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zl", "Zp", "Cs"})
# Bytes for a stem: room left for "-<hash>" and "_single.jsonl" within a 255-byte file name.
_MAX_STEM_BYTES = 200
_HASH_CHARS = 8


def _digest(label: str) -> str:
    return hashlib.sha256(label.encode("utf-8", "surrogatepass")).hexdigest()


def _sanitized(label: str) -> str:
    stem = _UNSAFE.sub("_", label)
    if not stem.isascii():
        stem = "".join(
            "_" if unicodedata.category(char) in _INVISIBLE_CATEGORIES else char for char in stem
        )
    if stem.strip(".") == "" or stem.startswith("."):
        stem = "_" + stem
    encoded = stem.encode("utf-8", "surrogatepass")
    if len(encoded) > _MAX_STEM_BYTES:
        stem = encoded[:_MAX_STEM_BYTES].decode("utf-8", "ignore")
    return stem


def file_stems(labels: Iterable[str]) -> dict[str, str]:
    """A distinct file stem for each label: the label itself when it is a safe, unique name."""
    wanted = {label: _sanitized(label) for label in labels}
    # Sanitized stems always get a hash; plain ones only when another is the same file.
    same_file: dict[str, int] = defaultdict(int)
    for label, stem in wanted.items():
        if stem == label:
            same_file[stem.casefold()] += 1
    stems = {}
    for label, stem in wanted.items():
        if stem == label and same_file[stem.casefold()] == 1:
            stems[label] = label
        else:
            stems[label] = f"{stem}-{_digest(label)[:_HASH_CHARS]}"
    return stems


def label_for_stem(stem: str, labels: Iterable[object]) -> str:
    """The label a file's lines name, when the file's stem is the one export made for it;
    otherwise the stem (FastChat's rule)."""
    named = {label for label in labels if isinstance(label, str)}
    if len(named) != 1:
        return stem
    (label,) = named
    if stem == label:
        return label
    base, _, suffix = stem.rpartition("-")
    matches = (
        base == _sanitized(label)
        and len(suffix) == _HASH_CHARS
        and _digest(label).startswith(suffix)
    )
    return label if matches else stem


def refuse_duplicate_labels(files: Sequence[Path], labels: Sequence[str]) -> None:
    """Two answer files naming one model would merge silently: refuse, naming both."""
    seen: dict[str, Path] = {}
    for path, label in zip(files, labels, strict=True):
        other = seen.setdefault(label, path)
        if other != path:
            raise DataError(
                f"{path}: holds answers of model {label!r}, as {other.name} does; "
                "remove one of the two files"
            )
