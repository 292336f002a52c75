"""Reading template files from `templates/` (or the copy shipped in the wheel).

`load_template_files` parses every file through the schema and reports every problem of
every file at once, each as `file: field: problem`, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tcai.errors import TemplateFileError
from tcai.templates.schema import Template

# libyaml's safe loader parses the 17 files ~10x faster than the pure-Python one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TEMPLATE_SUFFIXES = (".yaml", ".yml", ".json")
MAX_TEMPLATE_FILE_BYTES = 512 * 1024


def default_templates_dir() -> Path:
    """The wheel's copy when installed, else the repository's `templates/`."""
    package = Path(__file__).resolve().parent.parent
    shipped = package / "_templates"
    return shipped if shipped.is_dir() else package.parent / "templates"


def format_loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def schema_problems(document: Any) -> tuple[Template | None, list[str]]:
    """Parse `document`; return the template or `field: problem` lines."""
    try:
        return Template.model_validate(document), []
    except ValidationError as exc:
        lines = [
            f"{format_loc(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_input=False, include_url=False)
        ]
        return None, lines


def content_hash(template: Template) -> str:
    return hashlib.sha256(canonical_json(template.model_dump(mode="json")).encode()).hexdigest()


def canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _read(path: Path) -> Any:
    if path.stat().st_size > MAX_TEMPLATE_FILE_BYTES:
        raise ValueError(f"is larger than {MAX_TEMPLATE_FILE_BYTES // 1024} KiB")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.load(text, Loader=_YAML_LOADER)  # a safe loader (C when present)


def load_template_files(directory: Path | None = None) -> list[Template]:
    directory = directory or default_templates_dir()
    if not directory.is_dir():
        raise TemplateFileError(f"no templates folder at {directory}")
    paths = sorted(p for p in directory.iterdir() if p.suffix in TEMPLATE_SUFFIXES)
    if not paths:
        raise TemplateFileError(f"no template files (*.yaml, *.json) in {directory}")
    problems: list[str] = []
    templates: list[Template] = []
    seen: dict[str, Path] = {}
    for path in paths:
        shown = f"{directory.name}/{path.name}"
        try:
            document = _read(path)
        except (OSError, ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append(f"{shown}: cannot read: {first}")
            continue
        template, lines = schema_problems(document)
        problems.extend(f"{shown}: {line}" for line in lines)
        if template is None:
            continue
        if template.key != path.stem:
            problems.append(f"{shown}: key: '{template.key}' does not match the file name")
        for ident in (template.id, template.key):
            if ident in seen:
                problems.append(f"{shown}: id: '{ident}' is also used by {seen[ident].name}")
            seen[ident] = path
        templates.append(template)
    if problems:
        raise TemplateFileError(
            f"{len(problems)} problem(s) in the template files; nothing was written",
            details=problems,
        )
    return templates
