"""What both guards share: the file walk, the finding, and the report formats.

The walk respects .gitignore (through `git ls-files` inside a work tree, which is exact
and fast; through pathspec elsewhere), never follows symlinked directories (no loops),
skips binaries, and reports what it skipped as notes instead of failing.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tcai import __version__
from tcai.errors import UsageError

if TYPE_CHECKING:
    import pathspec

BINARY_SNIFF_BYTES = 8192
ALWAYS_SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".venv",
        "venv",
        "node_modules",
    }
)


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    rule: str
    message: str
    fingerprint: str = ""
    """A hash identifying the finding without its secret (baselines key on it)."""

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "rule": self.rule, "message": self.message}


@dataclass
class GuardReport:
    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.as_dict() for f in self.findings],
            "files_scanned": self.files_scanned,
            "notes": self.notes,
        }


def display_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


class PathNamer:
    """`display_path` for many files under one root: the root is resolved once, and a file
    whose resolved path `walk_files` already knows is not resolved again."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._prefix = str(self.root).rstrip("/") + "/" if os.sep == "/" else None

    def name(self, path: Path, resolved: Path) -> str:
        """What `display_path(path, root)` returns, given `resolved == path.resolve()`."""
        if self._prefix is not None:
            text = str(resolved)
            if text.startswith(self._prefix) and len(text) > len(self._prefix):
                return text[len(self._prefix) :]
        try:
            return resolved.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def is_binary(head: bytes) -> bool:
    return b"\x00" in head[:BINARY_SNIFF_BYTES]


def _git_files(directory: Path) -> list[Path] | None:
    """Tracked and untracked-but-not-ignored files under `directory`, or None outside git."""
    try:
        out = subprocess.run(
            [
                "git",
                "-C",
                str(directory),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [directory / name for name in out.decode("utf-8", "surrogateescape").split("\0") if name]


def _walk_with_pathspec(directory: Path, notes: list[str]) -> Iterator[Path]:
    import pathspec  # only outside a work tree: not worth importing for every scan

    specs: list[tuple[Path, pathspec.PathSpec[Any]]] = []
    for current, dirnames, filenames in os.walk(
        directory,
        followlinks=False,
        onerror=lambda e: notes.append(f"{e.filename}: cannot read ({e.strerror})"),
    ):
        base = Path(current)
        ignore = base / ".gitignore"
        if ignore.is_file():
            try:
                lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
                specs.append((base, pathspec.PathSpec.from_lines("gitignore", lines)))
            except OSError:
                pass

        def ignored(path: Path, is_dir: bool) -> bool:
            for spec_base, spec in specs:
                if path.is_relative_to(spec_base):
                    rel = path.relative_to(spec_base).as_posix() + ("/" if is_dir else "")
                    if spec.match_file(rel):
                        return True
            return False

        dirnames[:] = [
            d
            for d in dirnames
            if d not in ALWAYS_SKIPPED_DIRS
            and not ignored(base / d, True)
            and not (base / d).is_symlink()
        ]
        for name in filenames:
            path = base / name
            if not ignored(path, False):
                yield path


def iter_files(paths: Sequence[Path], notes: list[str]) -> Iterator[Path]:
    """Every regular file to scan under `paths` (files given directly are always scanned)."""
    for path, _resolved in walk_files(paths, notes):
        yield path


def walk_files(paths: Sequence[Path], notes: list[str]) -> Iterator[tuple[Path, Path]]:
    """`iter_files`, each file with its resolved path (what `Path.resolve` returns).

    A file that is not a symlink is resolved as its resolved directory plus its name, each
    directory once: the same answer as `Path.resolve` without one lstat per component of
    every file.
    """
    seen: set[Path] = set()
    directories: dict[Path, Path] = {}
    for root in paths:
        if not root.exists() and not root.is_symlink():
            raise UsageError(f"{root}: no such file or directory")
        candidates: Iterator[Path] | list[Path]
        if root.is_file():
            candidates = [root]
        else:
            git = _git_files(root) if (root / ".git").exists() or _inside_git(root) else None
            candidates = git if git is not None else _walk_with_pathspec(root, notes)
        for path in candidates:
            try:
                mode = path.lstat().st_mode
            except (OSError, ValueError):
                continue
            if stat.S_ISLNK(mode):
                key = path.resolve()
                if not key.is_file():
                    continue
            elif stat.S_ISREG(mode) and path.name not in ("", ".", ".."):
                parent = path.parent
                resolved_parent = directories.get(parent)
                if resolved_parent is None:
                    resolved_parent = directories[parent] = parent.resolve()
                key = resolved_parent / path.name
            else:
                continue
            if key in seen:
                continue
            seen.add(key)
            yield path, key


def _inside_git(directory: Path) -> bool:
    try:
        result = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0 and result.stdout.strip() == b"true"


def to_sarif(report: GuardReport, *, tool: str, rules: dict[str, str]) -> dict[str, Any]:
    """SARIF 2.1.0: one run, the rules that fired, one result per finding."""
    used = sorted({f.rule for f in report.findings})
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": tool,
                        "version": __version__,
                        "informationUri": "https://github.com/tcai/tcai",
                        "rules": [
                            {"id": rule, "shortDescription": {"text": rules.get(rule, rule)}}
                            for rule in used
                        ],
                    }
                },
                "results": [
                    {
                        "ruleId": f.rule,
                        "level": "error",
                        "message": {"text": f.message},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": f.file},
                                    "region": {"startLine": max(1, f.line)},
                                }
                            }
                        ],
                        **(
                            {"partialFingerprints": {"tcai/v1": f.fingerprint}}
                            if f.fingerprint
                            else {}
                        ),
                    }
                    for f in report.findings
                ],
            }
        ],
    }
