"""FAQ files an operator imports: CSV with `question,answer` columns, or Markdown with
one `## Question` heading per FAQ and its answer below (docs/knowledge-import.md).

A CSV cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is what a
spreadsheet runs as a formula: the file holds the formula, not the text the business
meant, so that row is refused with a line saying why and where, and the other rows go
on. Nothing is stripped silently.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from tcai.errors import UsageError
from tcai.knowledge.extract import MAX_ANSWER, MAX_QUESTION, FoundFaq, clean

MAX_FILE_BYTES = 5 * 1024 * 1024
REQUIRED = ("question", "answer")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass
class FileFaqs:
    faqs: list[FoundFaq] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """One line per row or section not imported, saying why."""


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UsageError(f"--file: cannot read {path} ({exc.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise UsageError(f"--file: {path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"--file: {path} is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise UsageError(f"--file: cannot read {path} ({exc.strerror})") from None


def _checked(faqs: FileFaqs, where: str, question: str, answer: str, source: str) -> None:
    q, a = clean(question, MAX_QUESTION + 1), clean(answer, MAX_ANSWER + 1)
    if not q or not a:
        faqs.refused.append(f"{where}: the question or the answer is empty; skipped")
    elif len(q) > MAX_QUESTION:
        faqs.refused.append(f"{where}: the question is longer than {MAX_QUESTION} characters")
    elif len(a) > MAX_ANSWER:
        faqs.refused.append(f"{where}: the answer is longer than {MAX_ANSWER} characters")
    else:
        faqs.faqs.append(FoundFaq(q, a, source))


def read_csv(path: Path) -> FileFaqs:
    text = _read(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        found = ", ".join(n for n in header if n) or "none"
        raise UsageError(
            f"--file: {path.name} has no {' or '.join(missing)} column (columns found: "
            f"{found}); the first row must name question,answer"
        )
    result = FileFaqs()
    for row in reader:
        where = f"{path.name} line {reader.line_num}"
        question = row.get(header["question"]) or ""
        answer = row.get(header["answer"]) or ""
        formula = next(
            (
                (column, value)
                for column, value in (("question", question), ("answer", answer))
                if value.lstrip(" ").startswith(FORMULA_START)
            ),
            None,
        )
        if formula is not None:
            column, value = formula
            first = value.lstrip(" ")[0]
            shown = {"\t": "a tab", "\r": "a carriage return"}.get(first, f"'{first}'")
            result.refused.append(
                f"{where}: the {column} starts with {shown}, which a spreadsheet runs as a "
                "formula; row refused (write the text itself, without the leading character)"
            )
            continue
        _checked(result, where, question, answer, f"{path.name}:{reader.line_num}")
    return result


def read_markdown(path: Path) -> FileFaqs:
    """`## Question` (or `###`) headings, each answered by the text below it."""
    result = FileFaqs()
    question: str | None = None
    start = 0
    answer: list[str] = []

    def close() -> None:
        if question is not None:
            where = f"{path.name} line {start}"
            _checked(result, where, question, "\n".join(answer), f"{path.name}:{start}")

    for number, line in enumerate(_read(path).splitlines(), start=1):
        match = _HEADING.match(line)
        if match and len(match.group(1)) in (2, 3):
            close()
            question, start, answer = match.group(2), number, []
        elif match:
            close()
            question, answer = None, []
        elif question is not None:
            answer.append(line)
    close()
    if not result.faqs and not result.refused:
        raise UsageError(
            f"--file: {path.name} has no '## Question' headings; write one per FAQ with "
            "its answer below"
        )
    return result


def read_faq_file(path: Path) -> FileFaqs:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path)
    if suffix in (".md", ".markdown"):
        return read_markdown(path)
    raise UsageError(f"--file: {path.name} is neither .csv (question,answer) nor .md")
