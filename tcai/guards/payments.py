"""The payment guard: finds code, UI and dependencies that would make tcai take payments.

tcai never processes payments (a booking is a redirect to the business's own provider), so
any payment SDK, payment-provider script, card-entry field or payment dependency is a
finding. This module owns the analysers and the one loop that applies the rules; the rules
themselves are data (`tcai/data/payment_rules.yaml`).

What is looked at, chosen by file name:
- Python: the AST (imports, `__import__` / `importlib.import_module`, calls after import
  aliases are resolved) and string literals other than docstrings, searched for payment
  URLs (an inline page loading Stripe.js, a direct API call, a CSP) and card fields. Not
  for browser SDK call patterns: in Python those are fixtures or data, and a page that
  really runs them must load the SDK, whose URL or package is found. A file that does not
  parse is scanned line by line instead.
- JavaScript / TypeScript: import, export-from, require and import() specifiers, URLs,
  browser SDK calls and card fields, with comments blanked out first.
- Markup (HTML, templates, Vue, Svelte…): the same, with markup comments blanked and the
  imports read from `<script>` blocks only.
- Dependency manifests and lock files, Python and npm.

Deliberately not looked at: documentation (Markdown, reST, plain text other than
requirements files, anything under a docs/ directory), data files such as YAML (so the
rule file and `tcai/data/providers.yaml`, which lists payment hosts a booking link must
never point at, do not count), and CSS. A finding is waived by an allow comment with a
reason on its line or the line before; the marker is "tcai:" followed by
"allow-payment <reason>". Not here either: the file walk, `Finding`, `GuardReport` and
SARIF (`tcai.guards.common`), and rendering (the CLI).
"""

from __future__ import annotations

import ast
import configparser
import hashlib
import json
import re
import time
import tomllib
import warnings
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tcai.data import data_file
from tcai.guards.common import (
    BINARY_SNIFF_BYTES,
    Finding,
    GuardReport,
    display_path,
    is_binary,
    iter_files,
)

RULES_FILE = data_file("payment_rules.yaml")
MAX_FILE_BYTES = 32 * 1024 * 1024

KINDS = frozenset(
    {
        "python-import",
        "python-call",
        "python-dependency",
        "npm-import",
        "npm-dependency",
        "url",
        "code",
        "card-field-name",
        "card-autocomplete",
        "allow-comment",
    }
)

DOC_SUFFIXES = frozenset({".md", ".markdown", ".rst", ".adoc", ".asciidoc", ".txt", ".rtf"})
DOC_DIRS = frozenset({"docs", "doc", "documentation"})
PYTHON_SUFFIXES = frozenset({".py", ".pyi", ".pyw"})
JS_SUFFIXES = frozenset({".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx"})
MARKUP_SUFFIXES = frozenset(
    {
        ".html",
        ".htm",
        ".xhtml",
        ".vue",
        ".svelte",
        ".astro",
        ".jinja",
        ".jinja2",
        ".j2",
        ".njk",
        ".hbs",
        ".handlebars",
        ".mustache",
        ".ejs",
        ".erb",
        ".liquid",
        ".twig",
        ".tpl",
        ".php",
        ".jsp",
        ".cshtml",
        ".razor",
    }
)
# Component files where `{#` opens a block rather than a template comment.
COMPONENT_SUFFIXES = frozenset({".vue", ".svelte", ".astro"})
REQUIREMENTS_NAME = re.compile(
    r"^(?:.*[-_.])?(?:requirements|constraints)(?:[-_.].*)?\.(?:txt|in)$", re.IGNORECASE
)
PYTHON_LOCK_NAME = re.compile(r"^(?:poetry\.lock|uv\.lock|pdm\.lock|pylock(?:\.[\w-]+)?\.toml)$")

ALLOW_MARKER = re.compile(r"tcai:[ \t]*allow-payment(?![\w-])(.*)")
ALLOW_CLOSERS = re.compile(r"(?:-->|\*/\}?|#\}|%\}|\}\}|[\"'`,;)\]]+)\s*$")
ALLOW_REASON = re.compile(r"[^\W\d_]{2,}")

# Starts with a literal, so the regex engine skips from one "//" to the next.
URL = re.compile(
    r"//([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+)"
    r"(?::\d+)?(/[^\s\"'`<>(){}|\\^]*)?",
    re.IGNORECASE,
)
SCHEME_BEFORE = re.compile(r"(?i)https?:$")
# npm CDNs: host, the path prefix before the package specifier.
NPM_CDNS = (
    ("unpkg.com", "/"),
    ("cdn.jsdelivr.net", "/npm/"),
    ("esm.sh", "/"),
    ("cdn.skypack.dev", "/"),
    ("ga.jspm.io", "/npm:"),
    ("jspm.dev", "/"),
)
JS_SPECIFIER = re.compile(
    r"""(?:\bfrom\s*|\bimport\s*(?:\(\s*)?|\brequire\s*\(\s*)(['"`])([^'"`\n]+)\1"""
)
JS_COMMENT_OR_STRING = re.compile(
    r"""(?<!\\)//[^\n]*|(?<!\\)/\*.*?\*/|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`""",
    re.DOTALL,
)
MARKUP_COMMENT = re.compile(r"<!--.*?-->|\{\{!--.*?--\}\}", re.DOTALL)
TEMPLATE_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
SCRIPT_BLOCK = re.compile(r"<script\b[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
EGG = re.compile(r"[#&]egg=([A-Za-z0-9._-]+)")
DYNAMIC_IMPORTS = frozenset(
    {"__import__", "builtins.__import__", "importlib.import_module", "importlib.__import__"}
)


@dataclass(frozen=True)
class Example:
    """A snippet the rule must find: every rule carries one, and the tests run them all."""

    file: str
    text: str
    line: int | None = None


@dataclass(frozen=True)
class PaymentRule:
    id: str
    provider: str
    kind: str
    why: str
    match: tuple[str, ...]
    examples: tuple[Example, ...]
    keywords: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return f"{self.provider}: {self.why}"


@dataclass(frozen=True)
class UrlPattern:
    host: re.Pattern[str]
    path: str
    rule: PaymentRule


@dataclass(frozen=True)
class CodeRule:
    """A `code` rule's expressions, run only on a text holding one of its keywords."""

    keywords: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    rule: PaymentRule


@dataclass(frozen=True)
class CardFieldRule:
    """A card-field expression, run only on a text whose lower case holds a gate word."""

    gates: tuple[str, ...]
    pattern: re.Pattern[str]
    rule: PaymentRule


@dataclass(frozen=True)
class RuleBook:
    """The rules, indexed for the analysers."""

    rules: tuple[PaymentRule, ...]
    policy: str
    python_imports: dict[str, PaymentRule]
    python_calls: dict[str, PaymentRule]
    python_call_suffixes: tuple[tuple[str, PaymentRule], ...]
    python_dependencies: dict[str, PaymentRule]
    npm_imports: dict[str, PaymentRule]
    npm_dependencies: dict[str, PaymentRule]
    urls: tuple[UrlPattern, ...]
    url_domains: tuple[str, ...]
    code: tuple[CodeRule, ...]
    card_fields: tuple[CardFieldRule, ...]
    python_keywords: tuple[str, ...]
    allow_rule: PaymentRule

    def may_match_markup(self, text: str, lower: str) -> bool:
        """The cheap first pass for Python strings: could a URL or card-field rule match?"""
        return ("//" in text and any(d in lower for d in self.url_domains)) or any(
            g in lower for c in self.card_fields for g in c.gates
        )

    def may_match_python(self, lower: str) -> bool:
        """The cheap first pass for Python code: a module, call or receiver name."""
        return any(k in lower for k in self.python_keywords)

    def message(self, rule: PaymentRule, detail: str) -> str:
        if rule.kind == "allow-comment":
            return f"{rule.description} ({detail})"
        return f"{rule.description} ({detail}); {self.policy}"


@dataclass(frozen=True)
class Hit:
    """One match before allow comments and de-duplication: a line, a rule, what was seen."""

    line: int
    rule: PaymentRule
    detail: str


# --- the rule book ---------------------------------------------------------------------


def normalise_distribution(name: str) -> str:
    """PEP 503: `Rave_Python` and `rave-python` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _host_pattern(glob: str) -> re.Pattern[str]:
    """A host glob that also matches subdomains; `*` stays inside one label."""
    body = r"[^.]*".join(re.escape(part) for part in glob.lower().split("*"))
    return re.compile(r"(?:[^.]+\.)*" + body)


def _card_field_pattern(kind: str, tokens: Sequence[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True))
    if kind == "card-field-name":
        return re.compile(
            r"\b(?:name|id|formcontrolname)\s*=\s*\{?\s*(['\"`])"
            rf"(?:[\w.-]*\[)?(?:{alternatives})\]?\1",
            re.IGNORECASE,
        )
    return re.compile(
        r"\bautocomplete\s*=\s*\{?\s*(['\"`])[^'\"`]*?"
        rf"(?<![\w-])(?:{alternatives})(?![\w-])[^'\"`]*\1",
        re.IGNORECASE,
    )


def _rule_from(raw: Any, provider: str) -> PaymentRule:
    if not isinstance(raw, dict):
        raise ValueError(f"{RULES_FILE.name}: a rule of {provider} is not a mapping")
    rule_id = str(raw.get("id", ""))
    kind = str(raw.get("kind", ""))
    if not rule_id or kind not in KINDS:
        raise ValueError(f"{RULES_FILE.name}: rule {rule_id or '?'} has unknown kind {kind!r}")
    match = tuple(str(m) for m in raw.get("match") or ())
    if not match and kind != "allow-comment":
        raise ValueError(f"{RULES_FILE.name}: rule {rule_id} matches nothing")
    examples = tuple(
        Example(file=str(e["file"]), text=str(e["text"]), line=e.get("line"))
        for e in raw.get("examples") or ()
    )
    if not examples:
        raise ValueError(f"{RULES_FILE.name}: rule {rule_id} has no example")
    why = " ".join(str(raw.get("why", "")).split())
    if not why:
        raise ValueError(f"{RULES_FILE.name}: rule {rule_id} does not say why")
    keywords = tuple(str(k) for k in raw.get("keywords") or ())
    if kind == "code" and not keywords:
        raise ValueError(f"{RULES_FILE.name}: code rule {rule_id} has no keywords")
    return PaymentRule(rule_id, provider, kind, why, match, examples, keywords)


def build_rule_book(raw: Any) -> RuleBook:
    """Validate the rule file's content and index it; a broken rule file fails loudly."""
    if not isinstance(raw, dict) or not isinstance(raw.get("providers"), list):
        raise ValueError(f"{RULES_FILE.name}: expected a mapping with a providers list")
    rules: list[PaymentRule] = []
    for provider in raw["providers"]:
        name = str(provider.get("name", ""))
        rules.extend(_rule_from(r, name) for r in provider.get("rules") or ())
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise ValueError(f"{RULES_FILE.name}: rule id {rule.id} is used twice")
        seen.add(rule.id)

    python_imports: dict[str, PaymentRule] = {}
    python_calls: dict[str, PaymentRule] = {}
    call_suffixes: list[tuple[str, PaymentRule]] = []
    python_deps: dict[str, PaymentRule] = {}
    npm_imports: dict[str, PaymentRule] = {}
    npm_deps: dict[str, PaymentRule] = {}
    urls: list[UrlPattern] = []
    url_domains = {host for host, _ in NPM_CDNS}
    code: list[CodeRule] = []
    card_fields: list[CardFieldRule] = []
    python_keywords: set[str] = set()
    allow_rules: list[PaymentRule] = []
    for rule in rules:
        if rule.kind == "python-import":
            python_imports.update(dict.fromkeys(rule.match, rule))
            python_keywords.update(m.split(".")[0].lower() for m in rule.match)
        elif rule.kind == "python-call":
            for name in rule.match:
                if name.startswith("*."):
                    call_suffixes.append((name[1:], rule))
                    python_keywords.add(name[2:].lower())
                else:
                    python_calls[name] = rule
                    python_keywords.add(name.split(".")[0].lower())
        elif rule.kind == "python-dependency":
            python_deps.update({normalise_distribution(n): rule for n in rule.match})
        elif rule.kind == "npm-import":
            npm_imports.update(dict.fromkeys(rule.match, rule))
        elif rule.kind == "npm-dependency":
            npm_deps.update(dict.fromkeys(rule.match, rule))
        elif rule.kind == "url":
            for target in rule.match:
                host, _, path = target.lower().partition("/")
                urls.append(UrlPattern(_host_pattern(host), "/" + path if path else "", rule))
                url_domains.add(".".join(host.split(".")[-2:]))
        elif rule.kind == "code":
            try:
                patterns = tuple(re.compile(p) for p in rule.match)
            except re.error as exc:
                raise ValueError(f"{RULES_FILE.name}: rule {rule.id}: {exc}") from exc
            code.append(CodeRule(rule.keywords, patterns, rule))
        elif rule.kind in ("card-field-name", "card-autocomplete"):
            gates = (
                tuple(t.lower() for t in rule.match)
                if rule.kind == "card-field-name"
                else ("autocomplete",)
            )
            card_fields.append(
                CardFieldRule(gates, _card_field_pattern(rule.kind, rule.match), rule)
            )
        else:
            allow_rules.append(rule)
    if len(allow_rules) != 1:
        raise ValueError(f"{RULES_FILE.name}: expected exactly one allow-comment rule")
    # A URL with a path prefix is more specific than its bare host: try it first.
    urls.sort(key=lambda u: not u.path)
    return RuleBook(
        rules=tuple(rules),
        policy=" ".join(str(raw.get("policy", "")).split()),
        python_imports=python_imports,
        python_calls=python_calls,
        python_call_suffixes=tuple(call_suffixes),
        python_dependencies=python_deps,
        npm_imports=npm_imports,
        npm_dependencies=npm_deps,
        urls=tuple(urls),
        url_domains=tuple(sorted(url_domains)),
        code=tuple(code),
        card_fields=tuple(card_fields),
        python_keywords=tuple(sorted(python_keywords)),
        allow_rule=allow_rules[0],
    )


@cache
def load_rule_book() -> RuleBook:
    # The C loader when PyYAML has it: the pure-Python one takes a tenth of a second here.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return build_rule_book(yaml.load(RULES_FILE.read_text(encoding="utf-8"), Loader=loader))


def rule_descriptions() -> dict[str, str]:
    """Rule id → "<provider>: <why>", for SARIF and `--help` style listings."""
    return {rule.id: rule.description for rule in load_rule_book().rules}


# --- shared helpers ----------------------------------------------------------------------


class LineIndex:
    """Offsets in a text → 1-based line numbers."""

    def __init__(self, text: str) -> None:
        self._starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def line(self, offset: int) -> int:
        return bisect_right(self._starts, offset)


def _short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _blank(match: re.Match[str]) -> str:
    """The match replaced by spaces, newlines kept, so offsets and lines do not move."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _blank_js_comments(text: str) -> str:
    if "//" not in text and "/*" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        return _blank(match) if match.group(0)[0] == "/" else match.group(0)

    return JS_COMMENT_OR_STRING.sub(replace, text)


def _npm_package(specifier: str) -> str | None:
    """The package a module specifier names, or None for relative paths and URLs."""
    spec = specifier.strip()
    for prefix in ("npm:", "node:"):
        if spec.startswith(prefix):
            spec = spec[len(prefix) :]
    if not spec or spec[0] in "./~" or "://" in spec or spec.startswith("//"):
        return None
    parts = spec.split("/")
    if spec.startswith("@"):
        if len(parts) < 2:
            return None
        return parts[0] + "/" + parts[1].split("@", 1)[0]
    return parts[0].split("@", 1)[0]


def _client_matches(
    text: str, book: RuleBook, *, code: bool = True
) -> list[tuple[int, PaymentRule, str]]:
    """What runs in a browser or renders a page: URLs, card fields and, with `code`,
    browser SDK calls and hosted card elements."""
    found: list[tuple[int, PaymentRule, str]] = []
    lower = text.lower()
    if "//" in text and any(d in lower for d in book.url_domains):
        for match in URL.finditer(text):
            host = match.group(1).lower()
            path = (match.group(2) or "").rstrip(".,;:")
            url_rule = next(
                (
                    u.rule
                    for u in book.urls
                    if u.host.fullmatch(host) and (not u.path or path.startswith(u.path))
                ),
                None,
            )
            if url_rule is not None:
                scheme = SCHEME_BEFORE.search(text, max(0, match.start() - 6), match.start())
                url = (scheme.group(0) if scheme else "") + match.group(0).rstrip(".,;:")
                found.append((match.start(), url_rule, _short(url)))
                continue
            for cdn_host, prefix in NPM_CDNS:
                if host == cdn_host and path.startswith(prefix):
                    package = _npm_package(path[len(prefix) :])
                    npm_rule = book.npm_imports.get(package or "")
                    if npm_rule is not None:
                        found.append((match.start(), npm_rule, f"loads {package} from {host}"))
    for code_rule in book.code if code else ():
        if any(k in text for k in code_rule.keywords):
            for pattern in code_rule.patterns:
                found.extend(
                    (m.start(), code_rule.rule, _short(m.group(0), 60))
                    for m in pattern.finditer(text)
                )
    for card in book.card_fields:
        if any(g in lower for g in card.gates):
            found.extend(
                (m.start(), card.rule, _short(m.group(0), 60)) for m in card.pattern.finditer(text)
            )
    return found


def _js_import_matches(
    code: str, book: RuleBook, start: int = 0, end: int | None = None
) -> list[tuple[int, PaymentRule, str]]:
    found: list[tuple[int, PaymentRule, str]] = []
    for match in JS_SPECIFIER.finditer(code, start, len(code) if end is None else end):
        package = _npm_package(match.group(2))
        rule = book.npm_imports.get(package or "")
        if rule is not None:
            found.append((match.start(), rule, f"imports {match.group(2)}"))
    return found


def _hits_at(
    text: str, matches: Iterable[tuple[int, PaymentRule, str]], index: LineIndex | None = None
) -> list[Hit]:
    lines = index or LineIndex(text)
    return [Hit(lines.line(offset), rule, detail) for offset, rule, detail in matches]


# --- Python -------------------------------------------------------------------------------


def _module_rule(name: str, book: RuleBook) -> tuple[str, PaymentRule] | None:
    """The rule for an imported module: the name itself or a package above it."""
    parts = name.split(".")
    for size in range(len(parts), 0, -1):
        candidate = ".".join(parts[:size])
        rule = book.python_imports.get(candidate)
        if rule is not None:
            return candidate, rule
    return None


def _call_rule(name: str, book: RuleBook) -> PaymentRule | None:
    rule = book.python_calls.get(name)
    if rule is not None:
        return rule
    return next((r for suffix, r in book.python_call_suffixes if name.endswith(suffix)), None)


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str:
    """`s.PaymentIntent.create` with `import stripe as s` → "stripe.PaymentIntent.create"."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value, aliases)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func, aliases) + "()"
    return "?"


def _docstring(node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The id() of the node's docstring constant, or 0."""
    first = node.body[0] if node.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return id(first.value)
    return 0


def _dynamic_import(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """The module named by `__import__("x")` / `importlib.import_module("x")`, if any."""
    if (
        isinstance(node, ast.Call)
        and _dotted(node.func, aliases) in DYNAMIC_IMPORTS
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def _python_tree(tree: ast.Module, lines: list[str], book: RuleBook) -> list[Hit]:
    hits: list[Hit] = []
    aliases: dict[str, str] = {}
    calls: list[ast.Call] = []
    assigns: list[ast.Assign] = []
    strings: list[ast.Constant] = []
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstrings.add(_docstring(node))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
                found = _module_rule(alias.name, book)
                if found:
                    hits.append(Hit(node.lineno, found[1], f"imports {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            if node.level or not node.module:
                continue  # a relative import names the project's own module
            candidates = [node.module]
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if alias.name != "*":
                    aliases[alias.asname or alias.name] = full
                    candidates.append(full)
            for candidate in candidates:
                found = _module_rule(candidate, book)
                if found:
                    hits.append(Hit(node.lineno, found[1], f"imports {candidate}"))
                    break
        elif isinstance(node, ast.Call):
            calls.append(node)
        elif isinstance(node, ast.Assign):
            assigns.append(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.append(node)
    for assign in assigns:
        module = _dynamic_import(assign.value, aliases)
        if module and len(assign.targets) == 1 and isinstance(assign.targets[0], ast.Name):
            aliases[assign.targets[0].id] = module
    for call in calls:
        module = _dynamic_import(call, aliases)
        if module is not None:
            found = _module_rule(module, book)
            if found:
                hits.append(Hit(call.lineno, found[1], f"imports {module} dynamically"))
            continue
        name = _dotted(call.func, aliases)
        rule = _call_rule(name, book)
        if rule is not None:
            hits.append(Hit(call.lineno, rule, f"calls {name}"))
    hits.extend(_python_strings(strings, docstrings, lines, book))
    return hits


def _python_strings(
    strings: list[ast.Constant], docstrings: set[int], lines: list[str], book: RuleBook
) -> list[Hit]:
    """String literals are searched like markup (inline HTML, URLs); docstrings are docs.

    A literal spanning lines is placed by its own newlines, or, for implicitly joined
    pieces that have none, by the source line that holds the start of the match."""
    kept = [
        (s.value, s.lineno, s.end_lineno or s.lineno)
        for s in strings
        if id(s) not in docstrings and isinstance(s.value, str) and len(s.value) >= 4
    ]
    if not kept:
        return []
    starts: list[int] = []
    offset = 0
    for value, _, _ in kept:
        starts.append(offset)
        offset += len(value) + 1
    joined = "\n".join(value for value, _, _ in kept)
    hits: list[Hit] = []
    for position, rule, detail in _client_matches(joined, book, code=False):
        which = bisect_right(starts, position) - 1
        _, first, last = kept[which]
        line = min(first + joined.count("\n", starts[which], position), last)
        if first < last:
            needle = joined[position : position + 16].split("\n", 1)[0]
            line = next(
                (n for n in range(first, last + 1) if needle in lines[n - 1]),
                line,
            )
        hits.append(Hit(line, rule, detail))
    return hits


PY_IMPORT_LINE = re.compile(r"^\s*import\s+([\w., \t]+)")
PY_FROM_LINE = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+\(?([\w., \t*]+)")
PY_DYNAMIC_LINE = re.compile(r"(?:__import__|import_module)\s*\(\s*['\"]([\w.]+)['\"]")
PY_CALL_LINE = re.compile(r"((?:[A-Za-z_]\w*\s*\.\s*)+[A-Za-z_]\w*)\s*\(")


def _python_lines(text: str, book: RuleBook) -> list[Hit]:
    """For a file that does not parse: imports and calls line by line, the rest as markup."""
    hits: list[Hit] = []
    for number, line in enumerate(text.split("\n"), 1):
        candidates: list[str] = []
        if m := PY_IMPORT_LINE.match(line):
            candidates = [part.split()[0] for part in m.group(1).split(",") if part.split()]
        elif (m := PY_FROM_LINE.match(line)) and not m.group(1).startswith("."):
            names = [part.split()[0] for part in m.group(2).split(",") if part.split()]
            candidates = [m.group(1), *(f"{m.group(1)}.{n}" for n in names if n != "*")]
        candidates += PY_DYNAMIC_LINE.findall(line)
        for candidate in candidates:
            found = _module_rule(candidate, book)
            if found:
                hits.append(Hit(number, found[1], f"imports {candidate}"))
                break
        for m in PY_CALL_LINE.finditer(line):
            name = re.sub(r"\s+", "", m.group(1))
            rule = _call_rule(name, book)
            if rule is not None:
                hits.append(Hit(number, rule, f"calls {name}"))
    return hits + _hits_at(text, _client_matches(text, book, code=False))


def analyse_python(text: str, book: RuleBook) -> list[Hit]:
    lower = text.lower()
    if not (book.may_match_python(lower) or book.may_match_markup(text, lower)):
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _python_lines(text, book)
    return _python_tree(tree, text.split("\n"), book)


# --- JavaScript and markup -------------------------------------------------------------------


def analyse_javascript(text: str, book: RuleBook) -> list[Hit]:
    code = _blank_js_comments(text)
    index = LineIndex(text)
    return _hits_at(text, _js_import_matches(code, book) + _client_matches(code, book), index=index)


def _markup_analyser(component: bool) -> Callable[[str, RuleBook], list[Hit]]:
    def analyse(text: str, book: RuleBook) -> list[Hit]:
        code = MARKUP_COMMENT.sub(_blank, text)
        if not component:
            code = TEMPLATE_COMMENT.sub(_blank, code)
        blocks = list(SCRIPT_BLOCK.finditer(code))
        for block in blocks:
            start, end = block.span(1)
            code = code[:start] + _blank_js_comments(code[start:end]) + code[end:]
        matches = _client_matches(code, book)
        for block in blocks:
            matches += _js_import_matches(code, book, *block.span(1))
        return _hits_at(text, matches)

    return analyse


# --- dependency manifests and lock files ------------------------------------------------------


def _line_of(text: str, needle: str, start_line: int = 1) -> int | None:
    """The first line at or after `start_line` containing `needle`."""
    for number, line in enumerate(text.split("\n")[start_line - 1 :], start_line):
        if needle in line:
            return number
    return None


def _line_of_key(text: str, key: str, header: str | None = None) -> int:
    """The line of `key = …` (TOML) or `"key": …` (JSON), inside `header` when given."""
    start = 1
    if header is not None:
        header_line = next(
            (
                n
                for n, line in enumerate(text.split("\n"), 1)
                if line.strip().replace(" ", "") in (f"[{header}]", f'"{header}":{{')
                or line.strip().startswith(f'"{header}"')
            ),
            None,
        )
        start = header_line or 1
    pattern = re.compile(rf"""(?:^|[\s{{,])["']?{re.escape(key)}["']?\s*[=:]""", re.IGNORECASE)
    for number, line in enumerate(text.split("\n")[start - 1 :], start):
        if pattern.search(line):
            return number
    return 1 if header is None else _line_of_key(text, key)


def _requirement_hit(requirement: str, book: RuleBook) -> PaymentRule | None:
    egg = EGG.search(requirement)
    name = egg.group(1) if egg else None
    if name is None:
        match = REQUIREMENT_NAME.match(requirement)
        name = match.group(1) if match else None
    return book.python_dependencies.get(normalise_distribution(name)) if name else None


def _requirement_string_hits(text: str, requirements: Iterable[str], book: RuleBook) -> list[Hit]:
    hits: list[Hit] = []
    for requirement in requirements:
        rule = _requirement_hit(requirement, book)
        if rule is None:
            continue
        line = (
            _line_of(text, f'"{requirement}"')
            or _line_of(text, f"'{requirement}'")
            or _line_of(text, requirement)
            or 1
        )
        hits.append(Hit(line, rule, f"requires {_short(requirement)}"))
    return hits


def analyse_requirements(text: str, book: RuleBook) -> list[Hit]:
    hits: list[Hit] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0].strip()
        if not line or (line.startswith("-") and not EGG.search(line)):
            continue
        rule = _requirement_hit(line, book)
        if rule is not None:
            hits.append(Hit(number, rule, f"requires {_short(line)}"))
    return hits


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _tables(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _key_hits(text: str, tables: Iterable[tuple[str, dict[str, Any]]], book: RuleBook) -> list[Hit]:
    """Poetry- and Pipfile-style `name = "spec"` tables."""
    hits: list[Hit] = []
    for header, table in tables:
        for key in table:
            rule = book.python_dependencies.get(normalise_distribution(key))
            if rule is not None:
                hits.append(Hit(_line_of_key(text, key, header), rule, f"requires {key}"))
    return hits


def _quoted_requirements_fallback(text: str, book: RuleBook) -> list[Hit]:
    """A TOML file that does not parse: every quoted string or key that names a package."""
    hits: list[Hit] = []
    for number, line in enumerate(text.split("\n"), 1):
        for name in re.findall(r"""["']([A-Za-z0-9][A-Za-z0-9._-]*)""", line) + re.findall(
            r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*=", line
        ):
            rule = book.python_dependencies.get(normalise_distribution(name))
            if rule is not None:
                hits.append(Hit(number, rule, f"requires {name}"))
                break
    return hits


def analyse_pyproject(text: str, book: RuleBook) -> list[Hit]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return _quoted_requirements_fallback(text, book)
    project = _tables(data.get("project"))
    tool = _tables(data.get("tool"))
    requirements = _strings(project.get("dependencies"))
    requirements += _strings(_tables(data.get("build-system")).get("requires"))
    for group in (
        *_tables(project.get("optional-dependencies")).values(),
        *_tables(data.get("dependency-groups")).values(),
        *_tables(_tables(tool.get("pdm")).get("dev-dependencies")).values(),
    ):
        requirements += _strings(group)
    requirements += _strings(_tables(tool.get("uv")).get("dev-dependencies"))
    for env in _tables(_tables(tool.get("hatch")).get("envs")).values():
        env_table = _tables(env)
        requirements += _strings(env_table.get("dependencies"))
        requirements += _strings(env_table.get("extra-dependencies"))
    poetry = _tables(tool.get("poetry"))
    tables = [
        ("tool.poetry.dependencies", _tables(poetry.get("dependencies"))),
        ("tool.poetry.dev-dependencies", _tables(poetry.get("dev-dependencies"))),
    ]
    for group_name, group in _tables(poetry.get("group")).items():
        header = f"tool.poetry.group.{group_name}.dependencies"
        tables.append((header, _tables(_tables(group).get("dependencies"))))
    return _requirement_string_hits(text, requirements, book) + _key_hits(text, tables, book)


def analyse_pipfile(text: str, book: RuleBook) -> list[Hit]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return _quoted_requirements_fallback(text, book)
    skipped = {"source", "requires", "scripts", "pipenv"}
    return _key_hits(text, ((h, _tables(t)) for h, t in data.items() if h not in skipped), book)


def analyse_setup_cfg(text: str, book: RuleBook) -> list[Hit]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return analyse_requirements(text, book)
    values: list[str] = []
    if parser.has_section("options"):
        for key in ("install_requires", "setup_requires", "tests_require"):
            values.append(parser.get("options", key, fallback=""))
    if parser.has_section("options.extras_require"):
        values += [v for _, v in parser.items("options.extras_require")]
    hits: list[Hit] = []
    for value in values:
        for requirement in value.split("\n"):
            requirement = requirement.split("#", 1)[0].strip()
            rule = _requirement_hit(requirement, book) if requirement else None
            if rule is not None:
                line = _line_of(text, requirement) or 1
                hits.append(Hit(line, rule, f"requires {_short(requirement)}"))
    return hits


def analyse_setup_py(text: str, book: RuleBook) -> list[Hit]:
    """`install_requires=[...]` and friends in a `setup(...)` call."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    hits: list[Hit] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _dotted(node.func, {}).endswith("setup")):
            continue
        for keyword in node.keywords:
            values: list[ast.expr] = []
            if keyword.arg in ("install_requires", "setup_requires", "tests_require"):
                values = [keyword.value]
            elif keyword.arg == "extras_require" and isinstance(keyword.value, ast.Dict):
                values = [v for v in keyword.value.values if v is not None]
            for value in values:
                if not isinstance(value, ast.List | ast.Tuple | ast.Set):
                    continue
                for element in value.elts:
                    if isinstance(element, ast.Constant) and isinstance(element.value, str):
                        rule = _requirement_hit(element.value, book)
                        if rule is not None:
                            hits.append(
                                Hit(element.lineno, rule, f"requires {_short(element.value)}")
                            )
    return hits


def analyse_setup_script(text: str, book: RuleBook) -> list[Hit]:
    return analyse_python(text, book) + analyse_setup_py(text, book)


def _first_per_package(hits: Iterable[Hit]) -> list[Hit]:
    """A lock file names a package many times; its first mention is the finding."""
    seen: set[str] = set()
    kept: list[Hit] = []
    for hit in hits:
        if hit.detail not in seen:
            seen.add(hit.detail)
            kept.append(hit)
    return kept


def analyse_python_lock(text: str, book: RuleBook) -> list[Hit]:
    index = LineIndex(text)
    hits = []
    for match in re.finditer(r"""\bname\s*=\s*["']([^"'\n]+)["']""", text):
        rule = book.python_dependencies.get(normalise_distribution(match.group(1)))
        if rule is not None:
            hits.append(Hit(index.line(match.start()), rule, f"locks {match.group(1)}"))
    return _first_per_package(hits)


def analyse_pipfile_lock(text: str, book: RuleBook) -> list[Hit]:
    index = LineIndex(text)
    hits = []
    for match in re.finditer(r"""^\s*"([^"\n]+)"\s*:\s*\{""", text, re.MULTILINE):
        rule = book.python_dependencies.get(normalise_distribution(match.group(1)))
        if rule is not None:
            hits.append(Hit(index.line(match.start()), rule, f"locks {match.group(1)}"))
    return _first_per_package(hits)


NPM_SECTIONS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")
NPM_LIST_SECTIONS = ("bundledDependencies", "bundleDependencies")


def analyse_package_json(text: str, book: RuleBook) -> list[Hit]:
    try:
        data = json.loads(text)
    except ValueError:
        return analyse_npm_lock_json(text, book)
    if not isinstance(data, dict):
        return []
    hits: list[Hit] = []
    for section in NPM_SECTIONS + NPM_LIST_SECTIONS:
        value = data.get(section)
        names = list(value) if isinstance(value, dict) else _strings(value)
        for name in names:
            rule = book.npm_dependencies.get(name)
            if rule is None:
                continue
            if isinstance(value, dict):
                line = _line_of_key(text, name, section)
            else:
                section_line = _line_of(text, f'"{section}"') or 1
                line = _line_of(text, f'"{name}"', section_line) or section_line
            version = value.get(name) if isinstance(value, dict) else None
            spec = f"{name} {version}" if isinstance(version, str) else name
            hits.append(Hit(line, rule, f"{section}: {_short(spec)}"))
    return hits


NPM_LOCK_KEY = re.compile(
    r'"(?:[^"\n]*node_modules/)?(@[^"/\n@]+/[^"/\n@]+|[^"/\n@][^"/\n@]*)"\s*:', re.MULTILINE
)


def analyse_npm_lock_json(text: str, book: RuleBook) -> list[Hit]:
    """package-lock.json, npm-shrinkwrap.json, bun.lock: package names as JSON keys."""
    index = LineIndex(text)
    hits = []
    for match in NPM_LOCK_KEY.finditer(text):
        rule = book.npm_dependencies.get(match.group(1))
        if rule is not None:
            hits.append(Hit(index.line(match.start()), rule, f"locks {match.group(1)}"))
    return _first_per_package(hits)


def analyse_yarn_lock(text: str, book: RuleBook) -> list[Hit]:
    hits = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line[0] in " \t#" or not line.rstrip().endswith(":"):
            continue
        for spec in line.rstrip()[:-1].split(","):
            spec = spec.strip().strip("\"'")
            at = spec.find("@", 1)
            name = spec[:at] if at > 0 else spec
            rule = book.npm_dependencies.get(name)
            if rule is not None:
                hits.append(Hit(number, rule, f"locks {name}"))
    return _first_per_package(hits)


PNPM_KEY = re.compile(r"""^\s+['"]?/?(@[\w.-]+/[\w.-]+|[\w.-]+)(?=['"]?[@/:(])""", re.MULTILINE)


def analyse_pnpm_lock(text: str, book: RuleBook) -> list[Hit]:
    index = LineIndex(text)
    hits = []
    for match in PNPM_KEY.finditer(text):
        rule = book.npm_dependencies.get(match.group(1))
        if rule is not None:
            hits.append(Hit(index.line(match.start(1)), rule, f"locks {match.group(1)}"))
    return _first_per_package(hits)


# --- choosing the analysers, allow comments, the report ----------------------------------------

Analyser = Callable[[str, RuleBook], list[Hit]]

BY_NAME: dict[str, Analyser] = {
    "pyproject.toml": analyse_pyproject,
    "Pipfile": analyse_pipfile,
    "Pipfile.lock": analyse_pipfile_lock,
    "setup.cfg": analyse_setup_cfg,
    "setup.py": analyse_setup_script,
    "package.json": analyse_package_json,
    "package-lock.json": analyse_npm_lock_json,
    "npm-shrinkwrap.json": analyse_npm_lock_json,
    "bun.lock": analyse_npm_lock_json,
    "yarn.lock": analyse_yarn_lock,
    "pnpm-lock.yaml": analyse_pnpm_lock,
}


def is_requirements_file(path: PurePosixPath) -> bool:
    return bool(REQUIREMENTS_NAME.match(path.name)) or (
        path.parent.name == "requirements" and path.suffix in (".txt", ".in")
    )


def is_documentation(path: PurePosixPath) -> bool:
    """Docs mention providers by name; they never take a payment."""
    if any(part.lower() in DOC_DIRS for part in path.parts[:-1]):
        return True
    return path.suffix.lower() in DOC_SUFFIXES and not is_requirements_file(path)


def analyser_for(path: PurePosixPath) -> Analyser | None:
    """The analyser for a file, by its name; None when the guard does not look at it."""
    if is_documentation(path):
        return None
    name = path.name
    if name in BY_NAME:
        return BY_NAME[name]
    if is_requirements_file(path):
        return analyse_requirements
    if PYTHON_LOCK_NAME.match(name):
        return analyse_python_lock
    suffix = path.suffix.lower()
    if suffix in PYTHON_SUFFIXES:
        return analyse_python
    if suffix in JS_SUFFIXES:
        return analyse_javascript
    if suffix in MARKUP_SUFFIXES:
        return _markup_analyser(suffix in COMPONENT_SUFFIXES)
    return None


def _allow_lines(lines: list[str], book: RuleBook) -> tuple[set[int], list[Hit]]:
    """Lines with a reasoned allow comment, and a finding for each comment without one."""
    allowed: set[int] = set()
    unreasoned: list[Hit] = []
    for number, line in enumerate(lines, 1):
        match = ALLOW_MARKER.search(line)
        if match is None:
            continue
        reason = ALLOW_CLOSERS.sub("", match.group(1)).strip()
        if ALLOW_REASON.search(reason):
            allowed.add(number)
        else:
            unreasoned.append(Hit(number, book.allow_rule, _short(line.strip(), 60)))
    return allowed, unreasoned


def _fingerprint(rule: str, file: str, line_text: str) -> str:
    digest = hashlib.sha256(f"{rule}\0{file}\0{' '.join(line_text.split())}".encode())
    return digest.hexdigest()[:16]


def _findings(text: str, file: str, analyser: Analyser, book: RuleBook) -> list[Finding]:
    hits = analyser(text, book)
    lines = text.split("\n")
    allowed: set[int] = set()
    if "allow-payment" in text:
        allowed, unreasoned = _allow_lines(lines, book)
        hits += unreasoned
    findings: dict[tuple[int, str], Finding] = {}
    for hit in sorted(hits, key=lambda h: h.line):
        if hit.rule is not book.allow_rule and (hit.line in allowed or hit.line - 1 in allowed):
            continue
        key = (hit.line, hit.rule.id)
        if key not in findings:
            line_text = lines[hit.line - 1] if 0 < hit.line <= len(lines) else ""
            findings[key] = Finding(
                file=file,
                line=hit.line,
                rule=hit.rule.id,
                message=book.message(hit.rule, hit.detail),
                fingerprint=_fingerprint(hit.rule.id, file, line_text),
            )
    return sorted(findings.values(), key=lambda f: (f.line, f.rule))


def guard_text(text: str, filename: str) -> list[Finding]:
    """The findings for one file's text; the analyser is picked by `filename`."""
    analyser = analyser_for(PurePosixPath(filename.replace("\\", "/")))
    if analyser is None:
        return []
    return _findings(text, filename, analyser, load_rule_book())


def _relative(path: Path, roots: Sequence[Path]) -> PurePosixPath:
    """The path below the scanned directory it came from (for the docs/ test)."""
    for root in roots:
        if path == root:
            break
        try:
            return PurePosixPath(path.relative_to(root).as_posix())
        except ValueError:
            continue
    return PurePosixPath(path.name)


def guard_paths(paths: Sequence[Path], *, root: Path | None = None) -> GuardReport:
    """Walk `paths` once and report every payment finding; `root` anchors the file names."""
    started = time.perf_counter()
    book = load_rule_book()
    base = root if root is not None else Path.cwd()
    report = GuardReport()
    for path in iter_files(paths, report.notes):
        analyser = analyser_for(_relative(path, paths))
        if analyser is None:
            continue
        shown = display_path(path, base)
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                report.notes.append(
                    f"{shown}: skipped, {size // 2**20} MiB is over the "
                    f"{MAX_FILE_BYTES // 2**20} MiB limit"
                )
                continue
            data = path.read_bytes()
        except OSError as exc:
            report.notes.append(f"{shown}: cannot read ({exc.strerror or exc})")
            continue
        if is_binary(data[:BINARY_SNIFF_BYTES]):
            continue
        report.files_scanned += 1
        text = data.decode("utf-8-sig", errors="replace")
        report.findings.extend(_findings(text, shown, analyser, book))
    report.findings.sort(key=lambda f: (f.file, f.line, f.rule))
    report.seconds = time.perf_counter() - started
    return report
