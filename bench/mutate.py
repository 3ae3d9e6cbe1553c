"""Mutation testing: how many small wrong versions of the core modules the tests notice.

Run: .venv/bin/pip install -e '.[bench]' && .venv/bin/python -m bench.mutate [MODULE ...]
     [--jobs 2] [--timeout 120] [--survivors] [--only-survivors] [--sample N [--seed S]]

For each module (default: the rules, the audit chain, the callback, the outbox and the scheduler
rules; see MODULES) it makes one small change at a time — a flipped comparison, `and` for `or`,
a negated condition, a number ±1, a return value replaced by None, a deleted statement, True for
False, + for - — into a private copy of the working tree and runs the tests that execute the
changed line (found once by a coverage run over the whole suite), `pytest -x`. A mutant is
*killed* when a test fails, *timeout* when the run hangs (also counted as noticed), *survived*
when every test passes. The table gives the score per module: (killed + timeout) / mutants.
`--sample N` runs a seeded random N of a module's mutants (the table then says "N of M" and the
score is an estimate from that sample).

Not mutated, by rule: docstrings, log calls (`log.…(…)` / `logger.…(…)`: a lost log line is
visible to nobody a test can stand in for), type annotations, and lines marked
`# pragma: no mutate` with a reason. Results are kept in bench/.mutants/ so that
`--only-survivors` re-runs only what survived last time, after new tests.
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / "bench" / ".mutants"
MODULES = [
    "bot/rules/review.py",
    "bot/rules/proof.py",
    "bot/rules/audit_chain.py",
    "bot/wecom/callback.py",
    "bot/wecom/outbox.py",
    "scheduler/freshness.py",
]
SLOW_TESTS = ["tests/test_browser.py"]  # a real browser: too slow per mutant, and covered elsewhere
LOG_NAMES = {"log", "logger", "logging", "_log"}
PRAGMA = "pragma: no mutate"
IMPORT = "<import>"  # a line run while modules load, before any test starts

COMPARE_SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
BINOP_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult,
}


@dataclass
class Mutant:
    module: str
    index: int
    line: int
    description: str
    status: str = "pending"  # killed | timeout | survived | pending


def _is_log_call(node: ast.AST) -> bool:
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    func = node.value.func
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in LOG_NAMES


class _Mutator(ast.NodeTransformer):
    """Walks a module in a fixed order; counts mutation points and applies the one at `target`.

    With target = -1 it applies none and only records where each point is and what it would do.
    """

    def __init__(self, target: int, skipped_lines: set[int]) -> None:
        self.target = target
        self.skipped_lines = skipped_lines
        self.points: list[tuple[int, str]] = []
        self.applied = False

    def _point(self, node: ast.AST, description: str) -> bool:
        line = getattr(node, "lineno", 0)
        if line in self.skipped_lines:
            return False
        index = len(self.points)
        self.points.append((line, description))
        if index == self.target:
            self.applied = True
            return True
        return False

    # Nothing inside annotations, docstrings or log calls is mutated.
    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_arguments(self, node: ast.arguments) -> ast.AST:
        node.defaults = [self.visit(d) for d in node.defaults]
        node.kw_defaults = [self.visit(d) if d is not None else None for d in node.kw_defaults]
        return node

    def _body(self, body: list[ast.stmt], in_function: bool) -> list[ast.stmt]:
        result: list[ast.stmt] = []
        for position, statement in enumerate(body):
            if (
                position == 0
                and isinstance(statement, ast.Expr)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            ):
                result.append(statement)  # docstring
                continue
            if _is_log_call(statement):
                result.append(statement)
                continue
            deletable = (
                in_function
                and isinstance(statement, (ast.Expr, ast.AugAssign, ast.Assign))
                and (
                    not isinstance(statement, ast.Assign)
                    or any(isinstance(t, (ast.Attribute, ast.Subscript)) for t in statement.targets)
                )
            )
            if deletable and self._point(statement, f"delete `{ast.unparse(statement)[:60]}`"):
                result.append(ast.copy_location(ast.Pass(), statement))
                continue
            result.append(self.visit(statement))
        return result or [ast.Pass()]

    def generic_visit(self, node: ast.AST) -> ast.AST:
        in_function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for field, value in ast.iter_fields(node):
            if field == "returns" or field == "annotation":
                continue
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                setattr(
                    node,
                    field,
                    self._body(value, in_function or not isinstance(node, (ast.Module, ast.ClassDef))),
                )
            elif isinstance(value, list):
                setattr(node, field, [self.visit(v) if isinstance(v, ast.AST) else v for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, field, self.visit(value))
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        for i, op in enumerate(node.ops):
            swap = COMPARE_SWAPS.get(type(op))
            if swap and self._point(node, f"`{_op_text(op)}` → `{_op_text(swap())}`"):
                node.ops[i] = swap()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        if self._point(node, f"`{_op_text(node.op)}` → `{_op_text(other)}`"):
            node.op = other
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        swap = BINOP_SWAPS.get(type(node.op))
        if swap and not _is_text(node) and self._point(node, f"`{_op_text(node.op)}` → `{_op_text(swap())}`"):
            node.op = swap()
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        if isinstance(node.op, ast.Not) and self._point(node, f"drop `not` in `{ast.unparse(node)[:50]}`"):
            return node.operand
        return node

    def _negate_test(self, node: ast.If | ast.While | ast.IfExp) -> None:
        if isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not):
            return  # dropping the `not` already covers it
        if self._point(node.test, f"negate `{ast.unparse(node.test)[:50]}`"):
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)

    def visit_If(self, node: ast.If) -> ast.AST:
        self._negate_test(node)
        return self.generic_visit(node)

    def visit_While(self, node: ast.While) -> ast.AST:
        self._negate_test(node)
        return self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        self._negate_test(node)
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._point(node, f"`{value}` → `{not value}`"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, (int, float)):
            if self._point(node, f"`{value}` → `{value + 1}`"):
                return ast.copy_location(ast.Constant(value + 1), node)
            if self._point(node, f"`{value}` → `{value - 1}`"):
                return ast.copy_location(ast.Constant(value - 1), node)
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        if (
            node.value is not None
            and not (isinstance(node.value, ast.Constant) and node.value.value is None)
            and self._point(node, f"return None instead of `{ast.unparse(node.value)[:50]}`")
        ):
            node.value = ast.Constant(None)
        return node

    def visit_Break(self, node: ast.Break) -> ast.AST:
        if self._point(node, "`break` → `continue`"):
            return ast.copy_location(ast.Continue(), node)
        return node

    def visit_Continue(self, node: ast.Continue) -> ast.AST:
        if self._point(node, "`continue` → `break`"):
            return ast.copy_location(ast.Break(), node)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node  # texts are asserted as texts; numbers inside f-strings are formatting

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        node.value = self.visit(node.value)
        node.slice = self.visit(node.slice)
        return node


def _is_text(node: ast.BinOp) -> bool:
    return any(
        isinstance(side, (ast.Constant, ast.JoinedStr)) and isinstance(getattr(side, "value", ""), str)
        for side in (node.left, node.right)
    )


def _op_text(op: ast.AST) -> str:
    return {
        ast.Lt: "<",
        ast.LtE: "<=",
        ast.Gt: ">",
        ast.GtE: ">=",
        ast.Eq: "==",
        ast.NotEq: "!=",
        ast.In: "in",
        ast.NotIn: "not in",
        ast.Is: "is",
        ast.IsNot: "is not",
        ast.And: "and",
        ast.Or: "or",
        ast.Add: "+",
        ast.Sub: "-",
        ast.Mult: "*",
        ast.FloorDiv: "//",
        ast.Div: "/",
    }[type(op)]


def _skipped_lines(source: str) -> set[int]:
    skipped = {number for number, text in enumerate(source.splitlines(), 1) if PRAGMA in text}
    for node in ast.walk(ast.parse(source)):
        if _is_log_call(node) or isinstance(node, ast.AnnAssign) and node.value is None:
            skipped.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return skipped


def mutation_points(source: str) -> list[tuple[int, str]]:
    mutator = _Mutator(-1, _skipped_lines(source))
    mutator.visit(ast.parse(source))
    return mutator.points


def mutated_source(source: str, index: int) -> str:
    mutator = _Mutator(index, _skipped_lines(source))
    tree = mutator.visit(ast.parse(source))
    if not mutator.applied:
        raise IndexError(index)
    return ast.unparse(ast.fix_missing_locations(tree))


def _copy_tree(destination: Path) -> None:
    shutil.copytree(
        ROOT,
        destination,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", ".pytest_cache", ".mutants", "data", "*.egg-info", "node_modules"
        ),
    )


def _test_files() -> list[str]:
    return sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").glob("test_*.py")
        if str(p.relative_to(ROOT)) not in SLOW_TESTS
    )


# pytest escapes non-ASCII parameter ids in node ids ("\\u5e94…"), and such an id given back on
# the command line matches nothing: pytest then stops with a usage error before running a test,
# which must not count as a kill. Node ids are recorded and passed back unescaped instead.
PYTEST = [
    sys.executable,
    "-m",
    "pytest",
    "-q",
    "-p",
    "no:cacheprovider",
    "-o",
    "disable_test_id_escaping_and_forfeit_all_rights_to_community_support=true",
]


def _fingerprint(paths: list[str]) -> str:
    digest = hashlib.sha256(b"node ids unescaped\n")  # a map of escaped ids is not reused
    for path in sorted(paths):
        digest.update(path.encode() + (ROOT / path).read_bytes())
    return digest.hexdigest()[:16]


def coverage_map(modules: list[str], jobs: int, reuse: bool) -> dict[str, dict[int, list[str]]]:
    """Which tests execute each line of each module: {module: {line: [test node ids]}}.

    Kept per version of the modules; made again when the tests changed, unless `reuse`.
    """
    tests = _fingerprint([*_test_files(), "tests/conftest.py", "tests/flow.py"])
    cache = STATE / f"coverage-{_fingerprint(modules)}.json"
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved["tests"] == tests or reuse:
            return {m: {int(k): v for k, v in lines.items()} for m, lines in saved["lines"].items()}
    from coverage import CoverageData

    STATE.mkdir(parents=True, exist_ok=True)
    files = _test_files()
    chunks = [files[i::jobs] for i in range(jobs)]
    print(
        f"coverage run over {len(files)} test files to map lines to tests (once per change of tests) …",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as workdir:
        processes = []
        for number, chunk in enumerate(chunks):
            data_file = Path(workdir) / f".coverage.{number}"
            rc = Path(workdir) / f"rc{number}"
            # Not dynamic_context = test_function: that finds the test on the running frame's stack,
            # and the bot's aiohttp handlers run in the server's own tasks, so every line of the
            # callback endpoint was recorded as run by no test. bench._coverage_contexts labels
            # the data with the running test's node id instead, whatever task runs the code.
            rc.write_text(f"[run]\ninclude = {','.join(str(ROOT / m) for m in modules)}\n")
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "coverage",
                        "run",
                        f"--rcfile={rc}",
                        f"--data-file={data_file}",
                        *PYTEST[1:],
                        "-p",
                        "bench._coverage_contexts",
                        *chunk,
                    ],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for process in processes:
            if process.wait() not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
                # A collection error or crash leaves most lines mapped to no test, which would
                # count every mutant of them as a survivor.
                raise SystemExit(
                    f"the coverage run stopped (pytest exit {process.returncode}): "
                    f"run {' '.join(process.args[3:])} to see why"
                )
        result: dict[str, dict[int, list[str]]] = {m: {} for m in modules}
        for number in range(jobs):
            data = CoverageData(basename=str(Path(workdir) / f".coverage.{number}"))
            data.read()
            for module in modules:
                by_line = data.contexts_by_lineno(str(ROOT / module))
                for line, contexts in by_line.items():
                    runners = result[module].setdefault(line, [])
                    runners.extend(c if c else IMPORT for c in contexts)  # contexts are node ids
    empty = [module for module, lines in result.items() if not lines]
    if empty:
        raise SystemExit(f"the coverage run recorded nothing for {', '.join(empty)}: run the tests and check")
    cache.write_text(json.dumps({"tests": tests, "lines": result}))
    return result


def _node_id(context: str) -> str:
    """'tests.test_x.TestY.test_z' → 'tests/test_x.py::TestY::test_z'."""
    parts = context.split(".")
    for cut in range(len(parts), 0, -1):
        path = Path(*parts[:cut]).with_suffix(".py")
        if (ROOT / path).exists():
            return "::".join([str(path), *parts[cut:]])
    return context


@functools.cache
def _tree(source: str) -> ast.Module:
    """The module's syntax tree, parsed once for every mutant's test lookup (read, never changed)."""
    return ast.parse(source)


_COMPOUND = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.With,
    ast.AsyncWith,
    ast.Try,
)


def _statement_lines(source: str, line: int) -> range:
    """The lines of the innermost statement holding `line` (coverage records a statement's first line)."""
    best = range(line, line + 1)
    for node in ast.walk(_tree(source)):
        if (
            isinstance(node, ast.stmt)
            and node.lineno <= line <= (node.end_lineno or node.lineno)
            and not isinstance(node, _COMPOUND)
        ):
            span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
            if len(span) < len(best) or best == range(line, line + 1):
                best = span
    return best


def _inside_function(source: str, line: int) -> bool:
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        and node.lineno <= line <= (node.end_lineno or node.lineno)
        for node in ast.walk(_tree(source))
    )


def tests_for(module: str, line: int, source: str, covered: dict[int, list[str]]) -> list[str]:
    """The tests that run `line` (for a line run only at import — a module constant, a class
    body — every test that runs the module: the value is used wherever the module is), the test
    files named after the module first, so that the likeliest killer runs early."""
    tests: set[str] = set()
    for candidate in [line, *_statement_lines(source, line)]:
        tests.update(covered.get(candidate, []))
    # Coverage files an import-time line under whichever test imported the module first (a
    # test that starts the bot anew, say), not under the tests that use the value.
    if tests <= {IMPORT} or not _inside_function(source, line):
        tests = {test for tests_of_line in covered.values() for test in tests_of_line}
    tests.discard(IMPORT)
    stem = Path(module).stem.split("_")[0]
    return sorted(tests, key=lambda test: (stem not in test.split("::")[0], test))


def run_mutant(
    workdir: Path, mutant: Mutant, source: str, tests: list[str], timeout: float, both_databases: bool
) -> str:
    if not tests:
        return "survived"  # no test even runs this line
    if not both_databases:
        # The SQLite variants only, for speed, unless only PostgreSQL variants run the line (a
        # PostgreSQL-only branch): then those. Filtered by node id, not `-k`, which could select
        # nothing, and pytest's "no tests ran" (exit 5) would have counted as a kill.
        tests = [test for test in tests if "postgresql" not in test.partition("[")[2]] or tests
    target = workdir / mutant.module
    target.write_text(mutated_source(source, mutant.index))
    try:
        completed = subprocess.run(
            [*PYTEST, "-x", *tests],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=max(timeout, 2.0 * len(tests)),  # a constant's mutant runs hundreds of tests
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        if completed.returncode in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED):
            return "killed"  # a test failed, or the mutant broke collection (an import error)
        if completed.returncode != pytest.ExitCode.OK:  # no tests ran, or a node id matched nothing
            print(
                f"  pytest exit {completed.returncode} on {mutant.module}:{mutant.line} "
                f"#{mutant.index}: counted as survived",
                flush=True,
            )
        return "survived"
    except subprocess.TimeoutExpired:
        return "timeout"
    finally:
        target.write_text(source)


def _workdirs(jobs: int) -> list[Path]:
    base = Path(tempfile.mkdtemp(prefix="sanshen-mutate-"))
    dirs = [base / f"w{number}" for number in range(jobs)]
    for path in dirs:
        _copy_tree(path)
    return dirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=MODULES)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds per mutant before it counts as a hang"
    )
    parser.add_argument("--survivors", action="store_true", help="list each surviving mutant")
    parser.add_argument(
        "--only-survivors",
        action="store_true",
        help="re-run only the mutants that survived the last run (after adding tests)",
    )
    parser.add_argument("--list", action="store_true", help="only list the mutation points")
    parser.add_argument(
        "--reuse-coverage",
        action="store_true",
        help="keep the line → tests map even though tests changed (new tests are not used)",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=0,
        help="run only a seeded random sample of this many mutants per module",
    )
    parser.add_argument("--seed", type=int, default=1, help="the sample's seed")
    parser.add_argument(
        "--both-databases",
        action="store_true",
        help="also run the PostgreSQL variants (default: SQLite only, for speed)",
    )
    args = parser.parse_args(argv)
    modules = [m.removeprefix("./") for m in args.modules]

    sources = {m: (ROOT / m).read_text() for m in modules}
    mutants = {
        m: [Mutant(m, i, line, text) for i, (line, text) in enumerate(mutation_points(sources[m]))]
        for m in modules
    }
    if args.list:
        for module in modules:
            for mutant in mutants[module]:
                print(f"{module}:{mutant.line}  #{mutant.index}  {mutant.description}")
        return 0

    previous: dict[str, dict[str, str]] = {}
    for module in modules:
        saved = STATE / (module.replace("/", "__") + ".json")
        if saved.exists():
            data = json.loads(saved.read_text())
            if data.get("source_sha") == hashlib.sha256(sources[module].encode()).hexdigest():
                previous[module] = {f"{r['index']}": r["status"] for r in data["mutants"]}

    if args.sample:
        for module in modules:
            if len(mutants[module]) > args.sample:
                mutants[module] = sorted(
                    random.Random(args.seed).sample(mutants[module], args.sample), key=lambda m: m.index
                )
    covered = coverage_map(sorted(set(MODULES) | set(modules)), args.jobs, args.reuse_coverage)
    todo: list[tuple[Mutant, list[str]]] = []
    for module in modules:
        for mutant in mutants[module]:
            before = previous.get(module, {}).get(str(mutant.index))
            if args.only_survivors and before in ("killed", "timeout"):
                mutant.status = before
                continue
            todo.append((mutant, tests_for(module, mutant.line, sources[module], covered[module])))

    started = time.monotonic()
    workdirs = _workdirs(args.jobs)
    free = list(workdirs)
    done = 0

    def work(item: tuple[Mutant, list[str]]) -> None:
        nonlocal done
        mutant, tests = item
        workdir = free.pop()
        try:
            mutant.status = run_mutant(
                workdir, mutant, sources[mutant.module], tests, args.timeout, args.both_databases
            )
        finally:
            free.append(workdir)
        done += 1
        if mutant.status == "survived":
            print(f"  survived  {mutant.module}:{mutant.line}  {mutant.description}", flush=True)
        elif done % 20 == 0:
            print(f"  … {done}/{len(todo)} in {time.monotonic() - started:.0f} s", flush=True)

    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(work, todo))
    finally:
        shutil.rmtree(workdirs[0].parent, ignore_errors=True)

    STATE.mkdir(parents=True, exist_ok=True)
    for module in modules:
        (STATE / (module.replace("/", "__") + ".json")).write_text(
            json.dumps(
                {
                    "source_sha": hashlib.sha256(sources[module].encode()).hexdigest(),
                    "mutants": [asdict(m) for m in mutants[module]],
                },
                ensure_ascii=False,
                indent=1,
            )
        )

    print("\n| module | mutants | killed | timeout | survived | score |\n|---|---|---|---|---|---|")
    for module in modules:
        counts = {
            s: sum(1 for m in mutants[module] if m.status == s) for s in ("killed", "timeout", "survived")
        }
        total = len(mutants[module])
        score = (counts["killed"] + counts["timeout"]) / total if total else 1.0
        points = len(mutation_points(sources[module]))
        print(
            f"| {module} | {total if total == points else f'{total} of {points}'} | {counts['killed']} | {counts['timeout']} | {counts['survived']} "
            f"| {score:.0%} |"
        )
    print(f"\n{len(todo)} mutants run in {time.monotonic() - started:.0f} s with {args.jobs} jobs")
    if args.survivors:
        for module in modules:
            for mutant in mutants[module]:
                if mutant.status == "survived":
                    print(f"{module}:{mutant.line}  #{mutant.index}  {mutant.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
