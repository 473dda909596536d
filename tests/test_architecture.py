"""The house's rules, read from the source: imports point one way, modules and functions are small.

Arrows (README, "Architecture", whose diagram is checked against ALLOWED here): cli -> the public
API -> run -> {endpoints, store, bench, serving}; report and interop -> {scoring, store} -> bench ->
the top-level modules (errors, chat, config, ...). Every import of every module is read from its
syntax tree, whether at the top, in a function or under TYPE_CHECKING, so an arrow pointing the
wrong way fails here with its line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"
README = ENGINE.parent / "README.md"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# A part may import itself and the parts listed; "top" is engine/*.py but the API modules.
ALLOWED: dict[str, set[str]] = {
    "top": set(),
    "bench": {"top"},
    "scoring": {"top", "bench"},
    "store": {"top", "bench"},
    "endpoints": {"top"},
    "serving": {"top", "bench", "store"},
    "run": {"top", "bench", "scoring", "store", "endpoints", "serving"},
    "report": {"top", "bench", "scoring", "store"},
    "interop": {"top", "bench", "scoring", "store"},
    "api": {"top", "bench", "scoring", "store", "endpoints", "serving", "run", "report"},
    "cli": {"top", "bench", "scoring", "store", "endpoints", "serving", "run", "report"}
    | {"interop", "api"},
}
API_MODULES = {"engine", "engine.api"}
CLI_MODULES = {"engine.__main__", "engine.serve_gguf"}  # commands: `python -m engine...`


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(ENGINE.rglob("*.py")):
        parts = path.relative_to(ENGINE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def part(module: str) -> str:
    if module in API_MODULES:
        return "api"
    if module in CLI_MODULES:
        return "cli"
    pieces = module.split(".")
    if len(pieces) > 2 or (len(pieces) == 2 and (ENGINE / pieces[1]).is_dir()):
        return pieces[1]
    return "top"


def imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from engine.store import rows` imports a module
                yield node.lineno, f"{base}.{alias.name}"


def known(target: str, names: set[str]) -> str | None:
    while target and target not in names:
        target = target.rpartition(".")[0]
    return target or None


def test_imports_point_one_way() -> None:
    names = {name for name, _ in modules()}
    wrong = []
    for name, path in modules():
        here = part(name)
        for line, target in imports(path, name):
            imported = known(target, names)
            if imported is None or imported == "engine":  # `__version__`: every import runs it
                continue
            there = part(imported)
            if there != here and there not in ALLOWED[here]:
                wrong.append(f"{path.relative_to(ENGINE.parent)}:{line}: {here} -> {there}")
    assert wrong == [], "\n".join(wrong)


def test_nothing_imports_the_cli() -> None:
    for name, path in modules():
        if part(name) == "cli" or name == "engine":
            continue
        for line, target in imports(path, name):
            assert not target.startswith("engine.cli"), f"{path}:{line} imports {target}"


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(ENGINE.parent)): lines
        for _, path in modules()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_over_60_lines() -> None:
    long = []
    for _, path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ENGINE.parent)}:{node.lineno} {node.name}")
    assert long == []


def readme_arrows() -> dict[str, set[str]]:
    """The README's architecture diagram: `part ──► part, part` per line."""
    block = README.read_text().split("<!-- architecture -->", 1)[1].split("```", 2)[1]
    arrows = {}
    for line in block.strip().splitlines():
        part, _, targets = line.partition("──►")
        arrows[part.strip()] = {target.strip() for target in targets.split(",")}
    return arrows


def test_the_readme_diagram_draws_the_allowed_imports() -> None:
    arrows = readme_arrows()

    def reached(part: str) -> set[str]:
        found: set[str] = set()
        waiting = list(arrows.get(part, ()))
        while waiting:
            target = waiting.pop()
            if target not in found:
                found.add(target)
                waiting.extend(arrows.get(target, ()))
        return found

    assert set(arrows) <= set(ALLOWED)
    assert {part: reached(part) for part in ALLOWED} == ALLOWED
