"""Import direction: handlers and scheduler → services → rules and storage, no cycles, no sibling reach."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "storage", "scheduler")

CORE, RULES, STORAGE, WECOM = "bot.core", "bot.rules", "storage", "bot.wecom"
VIEWS, EXPORTS, SERVICES, DOCUMENTS = "bot.views", "bot.exports", "bot.services", "bot.documents"
HANDLERS, SCHEDULER, SIMULATOR, WEB = "handlers", "scheduler", "bot.simulator", "bot.web"
PROOFREAD = "bot.proofread"
WIRING = ("bot.app", "bot.keys")  # the application factory: builds and connects everything
CLI = "bot.cli"

# Each part and the parts it may import (besides itself). Everything points down.
ALLOWED: dict[str, frozenset[str]] = {
    CORE: frozenset(),
    DOCUMENTS: frozenset(),
    PROOFREAD: frozenset({CORE}),
    RULES: frozenset({CORE}),
    SIMULATOR: frozenset({CORE}),
    STORAGE: frozenset({CORE, RULES}),
    WECOM: frozenset({CORE, STORAGE}),
    VIEWS: frozenset({CORE, RULES, STORAGE, WECOM}),
    EXPORTS: frozenset({CORE, RULES, STORAGE}),
    SERVICES: frozenset({CORE, RULES, STORAGE, WECOM, VIEWS, DOCUMENTS, PROOFREAD}),
    HANDLERS: frozenset({CORE, RULES, STORAGE, WECOM, VIEWS, SERVICES, EXPORTS, DOCUMENTS, PROOFREAD}),
    SCHEDULER: frozenset({CORE, RULES, STORAGE, WECOM, VIEWS, SERVICES, PROOFREAD}),
    # the pages are an entry point like the handlers: they read periods as /report does
    WEB: frozenset({CORE, RULES, STORAGE, WECOM, VIEWS, SERVICES, EXPORTS, DOCUMENTS, PROOFREAD}),
}
PARTS = (*ALLOWED, *WIRING, CLI)
# Shared pieces a handler or sweep module may use from its own package.
SHARED_IN_PACKAGE = {"handlers.args", "scheduler.sweeper"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


MODULES = our_modules()


def imports_of(path: Path) -> Iterator[tuple[str, int]]:
    """Every module of ours that `path` imports, anywhere (in functions and TYPE_CHECKING too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                yield (candidate if candidate in MODULES else node.module), node.lineno


def part_of(module: str) -> str | None:
    """The longest part name that `module` is, or lies under."""
    best = None
    for part in PARTS:
        inside = module == part or module.startswith(part + ".")
        if inside and (best is None or len(part) > len(best)):
            best = part
    return best


def graph() -> dict[str, set[str]]:
    return {name: {dep for dep, _ in imports_of(path)} for name, path in MODULES.items()}


def test_every_module_belongs_to_a_part() -> None:
    loose = [m for m in MODULES if part_of(m) is None and m not in ("bot", "bot.__main__")]
    assert not loose, f"modules outside every part (give them one in tests/test_layout.py): {loose}"


def test_imports_point_down() -> None:
    wrong = []
    for name, path in MODULES.items():
        source = part_of(name)
        if source is None or source in WIRING or source == CLI:
            continue
        for dep, line in imports_of(path):
            target = part_of(dep)
            if target is None or target == source:
                continue
            if target not in ALLOWED[source]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({source}) imports {dep} ({target})")
    assert not wrong, "imports that point the wrong way:\n" + "\n".join(wrong)


def test_no_handler_or_sweep_imports_a_sibling() -> None:
    wrong = []
    for name, path in MODULES.items():
        package = name.split(".")[0]
        if package not in (HANDLERS, SCHEDULER) or name == package:
            continue  # handlers/__init__ and scheduler/__init__ assemble their modules
        for dep, line in imports_of(path):
            if dep.split(".")[0] == package and dep != name and dep not in SHARED_IN_PACKAGE:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {dep}")
    assert not wrong, (
        "a handler or sweep reaches into another (share it through bot.services):\n" + "\n".join(wrong)
    )


def test_no_import_cycles() -> None:
    edges = graph()
    # A package's __init__ is a container: `bot.x` running `bot/__init__` first is not a cycle.
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    edges = {m: {d for d in ds if d in MODULES and d not in packages} for m, ds in edges.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_the_check_catches_a_wrong_import(tmp_path: Path) -> None:
    """The walker sees imports inside functions: the kind that hid scheduler → handlers before."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from handlers.review import router\n    import storage.models\n")
    assert {dep for dep, _ in imports_of(probe)} == {"handlers.review", "storage.models"}
    assert part_of("handlers.review") == HANDLERS and HANDLERS not in ALLOWED[SCHEDULER]
