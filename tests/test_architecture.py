"""The house's plan holds (docs/architecture.md): every import inside tcai/ points down.

The rules are read from the import statements of every module (with the ast, so
imports inside functions count too). `check_imports` is also what `.ci/run` calls; a
planted violation makes it fail with one line per offending import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tcai"

# Floors, bottom first: a module may import its own part and any part on a lower floor.
FLOORS: dict[str, int] = {
    "tcai.errors": 0,
    "tcai.config": 1,
    "tcai.text": 2,
    "tcai.data": 2,
    "tcai.db": 3,
    "tcai.logs": 4,
    "tcai.audit": 4,
    "tcai.guards": 4,
    "tcai.templates": 5,
    "tcai.records": 6,
    "tcai.access": 6,
    "tcai.delivery": 6,
    "tcai.bots": 7,
    "tcai.chat": 8,
    "tcai.knowledge": 8,  # beside chat: uses bots and the delivery SSRF guard, never chat
    "tcai.quality": 9,
    "tcai.daemon": 10,
    "tcai.cli": 11,  # `tcai serve` starts the daemon; the daemon never calls the CLI
    "tcai.__main__": 12,
}
# The package's face (`tcai.__version__`) is importable from anywhere.
ANYWHERE = {"tcai"}
# Rules that say more than the floors.
NEVER: list[tuple[str, str, str]] = [
    ("tcai.daemon", "tcai.db.models", "the daemon calls the core; it never queries itself"),
    ("tcai.daemon", "tcai.db.types", "the daemon calls the core; it never queries itself"),
    ("tcai.daemon", "tcai.db.migrate", "the daemon calls the core; it never migrates itself"),
    ("tcai.daemon", "sqlmodel", "the daemon calls the core; it never queries itself"),
    ("tcai.guards", "tcai.db", "guards never touch the database"),
    ("tcai.guards", "sqlalchemy", "guards never touch the database"),
    ("tcai.guards", "sqlmodel", "guards never touch the database"),
    ("tcai.text", "tcai", "text imports nothing of ours"),
]
NEVER_EXCEPT = {("tcai.text", "tcai.text")}  # a text module may use another text module


@dataclass(frozen=True)
class Import:
    module: str
    target: str
    line: int


def module_name(path: Path, package: Path = PACKAGE) -> str:
    relative = path.relative_to(package.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, package: Path = PACKAGE) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path, package)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield Import(name, node.module, node.lineno)
            for alias in node.names:  # `from tcai.chat import spool` imports tcai.chat.spool
                inner = package.parent.joinpath(*node.module.split("."), alias.name)
                if inner.with_suffix(".py").exists() or inner.is_dir():
                    yield Import(name, f"{node.module}.{alias.name}", node.lineno)


def part_of(module: str) -> str | None:
    """The floor-table entry a module belongs to (longest prefix), or None."""
    best = None
    for part in FLOORS:
        if (module == part or module.startswith(part + ".")) and (
            best is None or len(part) > len(best)
        ):
            best = part
    return best


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def check_imports(package: Path = PACKAGE) -> list[str]:
    """Every import in `package` that breaks the plan, one line each."""
    problems: list[str] = []
    for path in sorted(package.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for imp in imports_of(path, package):
            where = f"{path.relative_to(package.parent)}:{imp.line}"
            for source, target, why in NEVER:
                if (
                    _under(imp.module, source)
                    and _under(imp.target, target)
                    and imp.target not in ANYWHERE | {"tcai.__version__"}
                    and not any(
                        _under(imp.module, a) and _under(imp.target, b) for a, b in NEVER_EXCEPT
                    )
                ):
                    problems.append(f"{where}: {imp.module} imports {imp.target}: {why}")
            if not imp.target.startswith("tcai.") or imp.target == "tcai.__version__":
                continue
            mine, theirs = part_of(imp.module), part_of(imp.target)
            if mine is None or theirs is None:
                if theirs is None and part_of(imp.target.rsplit(".", 1)[0]) is None:
                    problems.append(f"{where}: {imp.target} is on no floor of the plan")
                continue
            if mine != theirs and FLOORS[theirs] > FLOORS[mine]:
                problems.append(
                    f"{where}: {imp.module} (floor {FLOORS[mine]}, {mine}) imports "
                    f"{imp.target} (floor {FLOORS[theirs]}, {theirs}): an arrow up"
                )
            same_floor = mine != theirs and FLOORS[theirs] == FLOORS[mine]
            if same_floor and "tcai.data" not in (mine, theirs):
                problems.append(
                    f"{where}: {imp.module} imports {imp.target}: parts on one floor "
                    f"({mine}, {theirs}) do not import each other"
                )
    return sorted(set(problems))


def test_every_module_is_on_a_floor() -> None:
    names = [module_name(p) for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]
    lost = [name for name in names if name not in ANYWHERE and part_of(name) is None]
    assert lost == [], f"add these to FLOORS (and docs/architecture.md): {lost}"


def test_the_imports_follow_the_plan() -> None:
    problems = check_imports()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "statement", "expected"),
    [
        ("records/planted.py", "from tcai.chat.pipeline import ChatEngine", "an arrow up"),
        ("daemon/planted.py", "from tcai.db.models import Lead", "never queries itself"),
        ("text/planted.py", "from tcai.config import Settings", "nothing of ours"),
        ("guards/planted.py", "import sqlalchemy", "never touch the database"),
        ("bots/planted.py", "from tcai.cli.main import app", "an arrow up"),
        ("records/planted.py", "from tcai.access.users import create_user", "one floor"),
    ],
)
def test_a_planted_violation_is_caught(
    tmp_path: Path, module: str, statement: str, expected: str
) -> None:
    """The check can fail: copy the package, plant one bad import, see it named."""
    import shutil

    copy = tmp_path / "tcai"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "static"))
    (copy / module).write_text(f"{statement}\n", encoding="utf-8")
    problems = check_imports(copy)
    assert len(problems) == 1 and expected in problems[0], problems
    assert module in problems[0]
