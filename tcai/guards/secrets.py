"""The secret scanner behind `tcai scan secrets`: one engine for the rules in
`tcai/data/secret_rules.yaml`.

Owns how a file, a text or a repository's history is searched for credentials, what counts
as a placeholder, how a secret is masked and fingerprinted, and the baseline file. Speed
comes from the shape of the search (docs/guards.md): ONE case-insensitive pass over each
file's bytes with a combined keyword pattern, anchored on each keyword's rarest byte,
selects the few lines that contain a rule's keyword; only those lines are decoded and given
to the rules' regexes, and the generic "secret-like name = high-entropy value" rule is
judged there, line by line, by code rather than by one huge regex. A big tree is split
into chunks of files scanned by worker processes; the report is the same, in the same
order, whatever the number of workers.

Deliberately not here: walking the tree, .gitignore and binary detection (`common`), and
rendering or exit codes (the CLI). A full secret never leaves this module: findings carry
the first few characters and the length, baselines carry only SHA-256 fingerprints.
"""

from __future__ import annotations

import math
import os
import re
import string
import subprocess
import sys
import time
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePath
from typing import Any

from tcai.data import data_file
from tcai.errors import UsageError
from tcai.guards.common import (
    BINARY_SNIFF_BYTES,
    Finding,
    GuardReport,
    PathNamer,
    is_binary,
    walk_files,
)

RULES_FILE = data_file("secret_rules.yaml")
MAX_SCAN_BYTES = 5 * 1024 * 1024
ALLOW_MARKER = b"tcai: allow-secret"
_COMMENT_STARTS = (b"#", b"//", b"/*", b"*", b"--", b";", b"<!--", b"%", b"{#", b"rem ")
BASELINE_VERSION = 1
# Worker processes pay off above this much work (docs/guards.md): starting them costs 20 to
# 40 ms of CPU, and one core scans about 30 MB of source a second.
PARALLEL_MIN_FILES = 16
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
PARALLEL_BYTES_PER_WORKER = 4 * 1024 * 1024
PARALLEL_CHUNKS_PER_WORKER = 8

_RULE_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DOTTED_NAME = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$")
_CONSTANT_OR_SNAKE = re.compile(
    r"^(?:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[a-z][a-z0-9]*(?:_[a-z0-9]+)+)$"
)
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$", re.IGNORECASE)
_BASE64_BODY = re.compile(r"^[A-Za-z0-9+/=]{16,}$")
_PEM_HEADER = re.compile(r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----")
_ARMOR_HEADER = re.compile(r"^[A-Za-z-]+: ")
_PATH_SEGMENT = re.compile(r"^[a-z0-9._@-]+$|^[A-Za-z0-9._@-]*\.[a-z]{1,5}$")
_AUTH_SCHEME = re.compile(r"^(?:Bearer|Token|Basic)\s+(\S+)$", re.IGNORECASE)
_NAME_WORDS = re.compile(r"[A-Z]{2,}(?=[A-Z][a-z]|\b|_|\d|$)|[A-Z]?[a-z]+|[A-Z]+|\d+")
_VALUE_PIECES = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])")
_NEXT_PAIR = re.compile(r"[,;&][\w.-]+[=:]")
_LEET = str.maketrans("@$0134579", "asoieastg")
_LETTER_PIECES = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")

# `name <op> value` anywhere on a line. The name starts at a boundary and its quantifier is
# possessive, so a long run of word characters costs one attempt, not one per position.
_ASSIGNMENT = re.compile(
    r"""
    (?<![\w.$@-])(?<!::)
    (?P<name>[A-Za-z_][\w.-]{0,80}+)
    ["'`]?\]?
    [ \t]*
    (?::[ \t]*[A-Za-z_][\w.\[\], |]{0,60}+=(?!=)|:=|=>|=(?![=~])|:(?!:))
    [ \t]*
    (?:[rbufRBUF]{1,2}(?=["'`]))?
    (?:"(?P<dq>[^"\n]{0,1000}+)"
      |'(?P<sq>[^'\n]{0,1000}+)'
      |`(?P<bq>[^`\n]{0,1000}+)`
      |(?P<bare>(?:(?i:bearer|basic|token)[ \t]+)?[^\s"'`]{1,1000}+))
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class SecretRule:
    """One rule of the data file; `pattern` is None for the generic assignment rule."""

    id: str
    description: str
    keywords: tuple[str, ...]
    pattern: re.Pattern[str] | None
    entropy: float | None = None
    allow: tuple[re.Pattern[str], ...] = ()
    check: str | None = None
    requires_in_file: tuple[re.Pattern[str], ...] = ()
    placeholders: bool = True


@dataclass(frozen=True)
class AssignmentPolicy:
    """How the generic rule judges `name = value`."""

    secret_words: frozenset[str]
    key_pairs: frozenset[tuple[str, str]]
    qualifiers: frozenset[str]
    ignore_words: frozenset[str]
    password_words: frozenset[str]
    min_length: int
    hex_min_length: int
    password_min_length: int
    max_length: int
    entropy: float
    hex_entropy: float
    password_entropy: float
    skip_value_prefixes: tuple[str, ...]
    lookups: tuple[str, ...]
    code_suffixes: frozenset[str]


@dataclass(frozen=True)
class Placeholders:
    markers: re.Pattern[str]
    """Any of the markers, lower-case: changeme, xxxx, <, {, ..."""
    words: frozenset[str]
    run: re.Pattern[str]
    """max_run identical characters: xxxxxx, 000000."""
    sequence: re.Pattern[str]
    """max_sequence consecutive letters or digits, either way: abcdef, 654321."""
    short_sequence: re.Pattern[str]
    """Four ascending ones; two of them make a placeholder: abcd1234."""


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[SecretRule, ...]
    assignment: AssignmentPolicy
    placeholders: Placeholders
    prefilter: re.Pattern[bytes]
    """Every keyword of every rule in one pattern, anchored on rare bytes: the one pass over
    a file's bytes. It finds where a keyword's anchor byte is, not where the keyword starts."""
    keywords: re.Pattern[bytes]
    """The same keywords as a trie in a lookahead: `finditer` gives the longest keyword
    starting at each position of a line, overlapping ones included."""
    keyword_rules: dict[bytes, frozenset[int]]
    """A keyword -> the rules to run when it occurs (its own and those of keywords it contains)."""
    line_rules: dict[frozenset[bytes], list[int]] = field(default_factory=dict, compare=False)
    """The keywords found on a line -> the rules to run, in order (filled as lines come)."""


@dataclass(frozen=True)
class _Hit:
    line: int
    rule: SecretRule
    secret: str
    material: str
    """What the fingerprint hashes: the secret; for a private key, its BEGIN line and the
    start of the key material (BEGIN lines alone are the same in every key)."""


@dataclass
class _Block:
    """Bytes to scan, lines separated by b"\\n"; `line_numbers` maps line index -> line."""

    data: bytes
    name: str
    line_numbers: Sequence[int] | None = None
    bare_values: bool = True
    _text: str | None = field(default=None, repr=False)

    def text(self) -> str:
        if self._text is None:
            self._text = self.data.decode("utf-8", "replace")
        return self._text

    def number(self, index: int) -> int:
        return self.line_numbers[index] if self.line_numbers is not None else index + 1

    def following_lines(self, index: int, end: int, count: int) -> list[str]:
        """Up to `count` lines after line `index` (which ends at byte `end`), while they
        are the file's next lines."""
        lines: list[str] = []
        while len(lines) < count and end < len(self.data):
            if self.line_numbers is not None and (
                index + 1 >= len(self.line_numbers)
                or self.line_numbers[index + 1] != self.line_numbers[index] + 1
            ):
                break
            stop = self.data.find(b"\n", end + 1)
            stop = stop if stop != -1 else len(self.data)
            lines.append(self.data[end + 1 : stop].decode("utf-8", "replace"))
            index, end = index + 1, stop
        return lines

    def adjacent(self, index: int) -> bool:
        """True when line `index - 1` of the block is the line just above `index`."""
        if index == 0:
            return False
        return self.line_numbers is None or self.number(index - 1) == self.number(index) - 1


@dataclass(slots=True)
class _Line:
    """A candidate line: its block, its index there, where it ends, and its text."""

    block: _Block
    index: int
    end: int
    text: str


# --------------------------------------------------------------------------- rules


def _keyword_trie(keywords: Sequence[bytes]) -> bytes:
    """A regex matching any keyword, factored as a trie (one branch per distinct byte).

    Python's engine tries the alternatives of a flat `kw1|kw2|...` one after the other at
    every position; the trie tries one branch per byte: 87 ms instead of 410 ms for the
    pass over 2.5 MB of Python here.
    """
    trie: dict[int, Any] = {}
    for word in keywords:
        node = trie
        for byte in word:
            node = node.setdefault(byte, {})
        node[-1] = {}

    def emit(node: dict[int, Any]) -> bytes:
        branches = [
            re.escape(bytes([byte])) + emit(child)
            for byte, child in sorted(node.items())
            if byte != -1
        ]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        if -1 in node:
            return (b"(?:" + body + b")?") if len(branches) == 1 else body + b"?"
        return body

    return emit(trie)


# How often each byte occurs in source code once lower-cased, per 10,000 bytes (measured on
# Python's standard library and the packages of a virtual environment); a byte not listed
# is rarer than any listed. Only the speed of the prefilter depends on these figures.
_BYTE_FREQUENCY = dict(
    zip(
        b" etanrsoil\ncdpu,f'm_.h:\"gy()b=v0xw1-k2`3[]#456\\{}78/9>qj|*z;+?&<@!\t%~",
        (
            *(2375, 730, 516, 410, 408, 404, 400, 377, 373, 278, 265, 218, 203, 199, 173),
            *(168, 165, 162, 158, 157, 129, 127, 119, 104, 98, 91, 90, 90, 82, 64, 55, 54),
            *(50, 50, 46, 43, 37, 32, 30, 28, 28, 28, 26, 25, 25, 25, 23, 22, 22, 20, 19),
            *(19, 18, 14, 14, 12, 12, 12, 11, 7, 7, 4, 4, 4, 3, 3, 3, 3, 2),
        ),
        strict=True,
    )
)


def _byte_weight(byte: int) -> float:
    return _BYTE_FREQUENCY.get(byte, 0.5)


def _anchors(keywords: Sequence[bytes]) -> dict[bytes, int]:
    """Keyword -> the index of the byte the prefilter looks for first.

    Python's engine tries a match at every position whose byte can start one, so the
    fewer (and rarer) such bytes, the faster the pass: the anchors are a small set of rare
    bytes, at least one in each keyword (greedy: most keywords covered per occurrence,
    then drop any byte the others make unnecessary).
    """
    chosen: set[int] = set()
    left = set(keywords)
    while left:
        best = max(
            sorted({byte for word in left for byte in word}),
            key=lambda byte: sum(byte in word for word in left) / _byte_weight(byte),
        )
        chosen.add(best)
        left = {word for word in left if best not in word}
    for byte in sorted(chosen, key=_byte_weight, reverse=True):
        rest = chosen - {byte}
        if all(any(b in rest for b in word) for word in keywords):
            chosen = rest
    return {
        word: min(
            (i for i, byte in enumerate(word) if byte in chosen),
            key=lambda i: (_byte_weight(word[i]), i),
        )
        for word in keywords
    }


def _anchored_prefilter(keywords: Sequence[bytes]) -> bytes:
    """A regex matching at each keyword's anchor byte: `k(?<=tok)en` finds "token" where
    its "k" is. It matches where, and only where, some keyword occurs."""
    groups: dict[int, list[tuple[bytes, bytes]]] = {}
    for word, at in _anchors(keywords).items():
        groups.setdefault(word[at], []).append((word[: at + 1], word[at + 1 :]))
    branches = []
    for byte, parts in sorted(groups.items()):
        alternatives = [
            (b"(?<=" + re.escape(head) + b")" if len(head) > 1 else b"") + re.escape(tail)
            for head, tail in sorted(parts)
        ]
        branches.append(re.escape(bytes([byte])) + b"(?:" + b"|".join(alternatives) + b")")
    return b"|".join(branches)


def _compile_rule(raw: dict[str, Any]) -> SecretRule:
    rule_id = str(raw["id"])
    if not _RULE_ID.match(rule_id):
        raise ValueError(f"secret rule {rule_id!r}: id must be kebab-case")
    keywords = tuple(str(k) for k in raw.get("keywords") or ())
    if not keywords or any(not k.isascii() or k != k.lower() for k in keywords):
        raise ValueError(f"secret rule {rule_id}: needs lower-case ASCII keywords")
    pattern = None
    if raw.get("kind") != "assignment":
        pattern = re.compile(str(raw["regex"]))
        if pattern.groups < 1:
            raise ValueError(f"secret rule {rule_id}: the regex needs a capture group")
    check = raw.get("check")
    if check is not None and check not in _CHECKS:
        raise ValueError(f"secret rule {rule_id}: unknown check {check!r}")
    return SecretRule(
        id=rule_id,
        description=str(raw["description"]),
        keywords=keywords,
        pattern=pattern,
        entropy=float(raw["entropy"]) if raw.get("entropy") is not None else None,
        allow=tuple(re.compile(str(p)) for p in raw.get("allow") or ()),
        check=str(check) if check is not None else None,
        requires_in_file=tuple(re.compile(str(p)) for p in raw.get("requires_in_file") or ()),
        placeholders=bool(raw.get("placeholders", True)),
    )


def _words(values: Any) -> frozenset[str]:
    return frozenset(str(v).lower() for v in values or ())


def _read_rules_file() -> Any:
    """The parsed data file, with libyaml's parser when PyYAML has it (a tenth of the time)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(RULES_FILE.read_text(encoding="utf-8"), Loader=loader)


@cache
def load_rules() -> RuleSet:
    """The rules of `secret_rules.yaml`, compiled once per process."""
    raw = _read_rules_file()
    rules = tuple(_compile_rule(r) for r in raw["rules"])
    if len({r.id for r in rules}) != len(rules):
        raise ValueError("secret rules: duplicate ids")
    generic = next(r for r in raw["rules"] if r.get("kind") == "assignment")["assignment"]
    assignment = AssignmentPolicy(
        secret_words=_words(generic["secret_words"]),
        key_pairs=frozenset((str(a), str(b)) for a, b in generic["key_pairs"]),
        qualifiers=_words(generic["not_secret_qualifiers"]),
        ignore_words=_words(generic["ignore_words"]),
        password_words=_words(generic["password_words"]),
        min_length=int(generic["min_length"]),
        hex_min_length=int(generic["hex_min_length"]),
        password_min_length=int(generic["password_min_length"]),
        max_length=int(generic["max_length"]),
        entropy=float(generic["entropy"]),
        hex_entropy=float(generic["hex_entropy"]),
        password_entropy=float(generic["password_entropy"]),
        skip_value_prefixes=tuple(str(p).lower() for p in generic["skip_value_prefixes"]),
        lookups=tuple(str(p).lower() for p in generic["lookups"]),
        code_suffixes=_words(generic["code_suffixes"]),
    )
    holders = raw["placeholders"]
    placeholders = Placeholders(
        markers=re.compile("|".join(re.escape(str(m).lower()) for m in holders["markers"])),
        words=_words(holders["words"]),
        run=re.compile(r"(.)\1{" + str(int(holders["max_run"]) - 1) + "}", re.DOTALL),
        sequence=_sequence_pattern(int(holders["max_sequence"]), both_ways=True),
        short_sequence=_sequence_pattern(4, both_ways=False),
    )
    keywords = sorted({k.encode() for r in rules for k in r.keywords})
    own: dict[bytes, set[int]] = {k: set() for k in keywords}
    for index, rule in enumerate(rules):
        for keyword in rule.keywords:
            own[keyword.encode()].add(index)
    # When the pass finds keyword K, every keyword inside K is there too.
    keyword_rules = {
        k: frozenset(i for other in keywords if other in k for i in own[other]) for k in keywords
    }
    return RuleSet(
        rules=rules,
        assignment=assignment,
        placeholders=placeholders,
        prefilter=re.compile(_anchored_prefilter(keywords)),
        keywords=re.compile(b"(?=(" + _keyword_trie(keywords) + b"))"),
        keyword_rules=keyword_rules,
    )


def rule_descriptions() -> dict[str, str]:
    """Rule id -> description, for SARIF."""
    return {rule.id: rule.description for rule in load_rules().rules}


# --------------------------------------------------------------------------- judging values


def shannon_entropy(value: str) -> float:
    """Bits per character of `value` (0.0 for the empty string)."""
    if not value:
        return 0.0
    length = len(value)
    return -sum(n / length * math.log2(n / length) for n in Counter(value).values())


def mask(secret: str) -> str:
    """At most 4 real characters (fewer for short secrets), then the length."""
    shown = secret[: min(4, len(secret) // 4)]
    return f"{shown}… ({len(secret)} chars)"


def fingerprint(rule_id: str, file: str, material: str) -> str:
    import hashlib  # only when there is a finding

    digest = hashlib.sha256()
    digest.update(f"{rule_id}\0{file}\0".encode())
    digest.update(material.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _ngrams(alphabets: Sequence[str], length: int) -> list[str]:
    return [a[i : i + length] for a in alphabets for i in range(len(a) - length + 1)]


def _sequence_pattern(length: int, *, both_ways: bool) -> re.Pattern[str]:
    """Runs of `length` consecutive letters or digits: abcdef, 123456 (and fedcba)."""
    alphabets = [string.ascii_lowercase, string.digits]
    if both_ways:
        alphabets += [a[::-1] for a in alphabets]
    return re.compile("|".join(sorted(set(_ngrams(alphabets, length)))))


def is_placeholder(
    value: str, placeholders: Placeholders | None = None, *, whole_words_only: bool = False
) -> bool:
    """Values like changeme, xxxx, <your-key>, ${VAR}, test_secret, 123456, aaaaaaaa.

    With `whole_words_only`, a value counts as made of placeholder words only when it is
    one such word (password, s3cr3t, guest1), not a phrase of several (S3cretPassw0rd):
    that is the bar for a password written out in a URL, which is a credential by syntax.
    """
    holders = placeholders or load_rules().placeholders
    lowered = value.lower()
    if holders.markers.search(lowered):
        return True
    if len(set(lowered)) <= 2 or holders.run.search(lowered):
        return True
    if holders.sequence.search(lowered) or len(holders.short_sequence.findall(lowered)) >= 2:
        return True
    for text in (value, value.translate(_LEET)):
        pieces = [p.lower() for p in _VALUE_PIECES.split(text) if p]
        if whole_words_only and len(pieces) > 1:
            continue
        if pieces and all(_is_filler(p, holders.words) for p in pieces):
            return True
    return False


def _is_filler(piece: str, words: frozenset[str]) -> bool:
    if piece in words:
        return True
    if piece.isdigit():
        return len(piece) <= 4
    stripped = piece.rstrip("0123456789")
    return stripped != piece and len(piece) - len(stripped) <= 4 and stripped in words


def _body(rule: SecretRule, secret: str) -> str:
    """The secret without its rule's literal prefix (sk_test_, AKIA, hooks.slack.com ...)."""
    lowered = secret.lower()
    best = 0
    for keyword in rule.keywords:
        at = lowered.find(keyword)
        if at != -1 and at + len(keyword) > best and at <= 8:
            best = at + len(keyword)
    return secret[best:] if len(secret) - best >= 8 else secret


def _check_pem_body(match: re.Match[str], at: _Line) -> str | None:
    """Key material must follow the BEGIN line: on the same line (an escaped "\\n" in JSON
    or .env) or on the next lines. A BEGIN line followed by "...", prose, the END line or a
    closing quote (a constant in code) is an example; one that ends the text is reported."""
    header = _PEM_HEADER.search(at.text, match.start(1))
    if header is None:
        return None
    after = at.text[header.end() : header.end() + 4096].replace("\\r", "").replace("\\n", "\n")
    following = after.split("\n")[1:] if "\n" in after else []
    rest = after.split("\n", 1)[0]
    candidates = [rest, *following] if rest.strip(" \t\"',") else following
    if not candidates:
        candidates = at.block.following_lines(at.index, at.end, 4)
        if not candidates and not rest.strip():
            return header.group(0)  # the last line of what was given: nothing says "example"
    for raw in candidates:
        body = raw.strip().strip("\"',")
        if not body or (
            _ARMOR_HEADER.match(body) and not body.startswith(("Proc-Type:", "DEK-Info:"))
        ):
            continue
        if body.startswith(("Proc-Type:", "DEK-Info:")) or _BASE64_BODY.match(body):
            return header.group(0) + "\n" + body[:128]
        return None
    return None


def _check_mixed(match: re.Match[str], at: _Line) -> str | None:
    secret = _secret_of(match)
    has = (any(c.isupper() for c in secret), any(c.islower() for c in secret))
    return secret if all(has) and any(c.isdigit() for c in secret) else None


def _check_url_password(match: re.Match[str], at: _Line) -> str | None:
    password = _secret_of(match)
    user = match.group(0)[: match.start(1) - match.start(0)].rsplit("//", 1)[-1].rstrip(":")
    if password.lower() == user.lower() or password.startswith(("$", "%")):
        return None
    return None if is_placeholder(password, whole_words_only=True) else password


_Check = Callable[[re.Match[str], "_Line"], str | None]
_CHECKS: dict[str, _Check] = {
    "pem-body": _check_pem_body,
    "mixed-case-digits": _check_mixed,
    "url-password": _check_url_password,
}


def _secret_of(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g is not None)


def _secret_span(match: re.Match[str]) -> tuple[int, int]:
    group = next(i for i, g in enumerate(match.groups(), start=1) if g is not None)
    return match.span(group)


def _entropy_needed(length: int, base: float) -> float:
    """A short random string cannot reach a long one's entropy: scale the bar with length."""
    return min(base, 0.82 * math.log2(max(length, 2)))


def _judge_rule_match(rule: SecretRule, match: re.Match[str], at: _Line, rs: RuleSet) -> str | None:
    secret = _secret_of(match)
    if any(p.search(secret) for p in rule.allow):
        return None
    if rule.requires_in_file:
        text = at.block.text()
        if not any(p.search(text) for p in rule.requires_in_file):
            return None
    body = _body(rule, secret)
    if rule.placeholders and is_placeholder(body, rs.placeholders):
        return None
    if rule.entropy is not None:
        needed = _entropy_needed(len(body), rule.entropy)
        if shannon_entropy(body) < needed:
            return None
    if rule.check is not None:
        return _CHECKS[rule.check](match, at)
    return secret


# --------------------------------------------------------------------------- generic rule


def _name_words(name: str) -> list[str]:
    words: list[str] = []
    for part in re.split(r"[^A-Za-z0-9]+", name):
        words.extend(w.lower().rstrip("0123456789") for w in _NAME_WORDS.findall(part))
    return [w for w in words if w]


def is_secret_name(name: str, policy: AssignmentPolicy | None = None) -> bool:
    """password, DB_PASS, apiKey, client_secret, X-Api-Key; not token_url, password_hash."""
    policy = policy or load_rules().assignment
    words = _name_words(name)
    verdict = False
    for i, word in enumerate(words):
        before = words[i - 1] if i > 0 else ""
        if word in policy.secret_words or (before, word) in policy.key_pairs:
            verdict = before not in policy.qualifiers
        elif word in policy.ignore_words:
            verdict = False
    return verdict


def _is_password_name(name: str, policy: AssignmentPolicy) -> bool:
    words = _name_words(name)
    return bool(words) and any(w in policy.password_words for w in words[-2:])


def _character_classes(value: str) -> int:
    return sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )


def _is_wordlike(value: str) -> bool:
    """CustomUserModel, django.contrib.auth, client_secret_basic, this-is-not-a-key: words."""
    chunks = [c for c in re.split(r"[._-]+", value) if c]
    if not chunks or not all(c.isascii() and c.isalpha() for c in chunks):
        return False
    for chunk in chunks:
        if chunk.islower() or chunk.isupper() or chunk.istitle():
            continue
        if not all(len(p) >= 2 for p in _LETTER_PIECES.findall(chunk)):
            return False
    return True


def _is_path(value: str) -> bool:
    """/etc/ssl/private/key.pem, ./secrets/token.txt, ~/.aws/credentials; not base64."""
    if not value.startswith(("/", "./", "../", "~/")):
        return False
    segments = [s for s in value.split("/") if s not in ("", ".", "..", "~")]
    return all(_PATH_SEGMENT.match(s) or _is_wordlike(s) for s in segments)


def judge_assigned_value(name: str, value: str, policy: AssignmentPolicy, rs: RuleSet) -> bool:
    """True when `value`, assigned to the secret-like `name`, looks like a real secret."""
    scheme = _AUTH_SCHEME.match(value)
    if scheme:
        value = scheme.group(1)
    length = len(value)
    is_password = _is_password_name(name, policy)
    shortest = policy.password_min_length if is_password else policy.min_length
    if length < shortest or length > policy.max_length:
        return False
    lowered = value.lower()
    if any(c.isspace() for c in value) or "\\" in value or "(?" in value:
        return False
    if ("(" in value and ")" in value) or ("[" in value and "]" in value):
        return False  # a call, an index or a regex: code, not a literal secret
    if lowered.startswith(policy.skip_value_prefixes) or "://" in value:
        return False
    if any(lookup in lowered for lookup in policy.lookups):
        return False
    if _is_path(value) or _UUID.match(value) or _NUMBER.match(value) or _is_wordlike(value):
        return False
    if is_placeholder(value, rs.placeholders):
        return False
    entropy = shannon_entropy(value)
    if _HEX.match(value):
        return (
            length >= policy.hex_min_length
            and not value.isdigit()
            and entropy >= policy.hex_entropy
        )
    if length < policy.min_length:
        return _character_classes(value) >= 3 and entropy >= policy.password_entropy
    return entropy >= _entropy_needed(length, policy.entropy)


def _assignments(line: str, bare_values: bool) -> Iterator[tuple[str, str, tuple[int, int]]]:
    """(name, value, value span) for each `name <op> value` on the line."""
    for match in _ASSIGNMENT.finditer(line):
        for group in ("dq", "sq", "bq"):
            value = match.group(group)
            if value is not None:
                yield match.group("name"), value, match.span(group)
                break
        else:
            if not bare_values:
                continue
            value = match.group("bare")
            more = _NEXT_PAIR.search(value)  # a=1,b=2: the value ends at the comma
            value = (value[: more.start()] if more else value).rstrip(",;)]}")
            if not value or value[0] in "([{" or "(" in value or "[" in value:
                continue
            if _CONSTANT_OR_SNAKE.match(value) or _DOTTED_NAME.match(value):
                continue
            if value.lower() in {"true", "false", "null", "none", "yes", "no"}:
                continue
            start = match.start("bare")
            yield match.group("name"), value, (start, start + len(value))


# --------------------------------------------------------------------------- the engine


_LINE_RULES_CACHE = 4096


def _rules_on_line(rs: RuleSet, lower: bytes, start: int, end: int) -> list[int]:
    # Keywords may overlap (aws_secret contains secret): the lookahead finds one starting
    # at every position of this short line, not only where the previous one ended.
    found = frozenset(match.group(1) for match in rs.keywords.finditer(lower, start, end))
    rules = rs.line_rules.get(found)
    if rules is None:
        rules = sorted({i for keyword in found for i in rs.keyword_rules[keyword]})
        if len(rs.line_rules) < _LINE_RULES_CACHE:
            rs.line_rules[found] = rules
    return rules


def _is_allowed(lower: bytes, start: int, end: int, block: _Block, index: int) -> bool:
    """The marker on the line itself, or on a comment-only line just above it (a marker
    after code on the line above covers that line only)."""
    if ALLOW_MARKER in lower[start:end]:
        return True
    if start == 0 or not block.adjacent(index):
        return False
    above = lower[lower.rfind(b"\n", 0, start - 1) + 1 : start - 1].strip()
    return above.startswith(_COMMENT_STARTS) and ALLOW_MARKER in above


def _scan_line(rs: RuleSet, at: _Line, rule_indexes: list[int]) -> Iterator[_Hit]:
    taken: list[tuple[int, int]] = []  # sorted, never overlapping: one finding per value

    def free(span: tuple[int, int]) -> bool:
        i = bisect_left(taken, span)
        before_ok = i == 0 or taken[i - 1][1] <= span[0]
        return before_ok and (i == len(taken) or span[1] <= taken[i][0])

    for rule_index in rule_indexes:
        rule = rs.rules[rule_index]
        if rule.pattern is None:
            policy = rs.assignment
            for name, value, span in _assignments(at.text, at.block.bare_values):
                if not free(span) or not is_secret_name(name, policy):
                    continue
                if judge_assigned_value(name, value, policy, rs):
                    insort(taken, span)
                    yield _Hit(at.block.number(at.index), rule, value, value)
            continue
        for match in rule.pattern.finditer(at.text):
            span = _secret_span(match)
            if not free(span):
                continue
            material = _judge_rule_match(rule, match, at, rs)
            if material is not None:
                insort(taken, span)
                yield _Hit(at.block.number(at.index), rule, _secret_of(match), material)


def _scan_block(block: _Block, rs: RuleSet) -> Iterator[_Hit]:
    data = block.data
    lower = data.lower()  # bytes.lower() folds ASCII only: offsets stay those of `data`
    size = len(lower)
    search = rs.prefilter.search
    marked = ALLOW_MARKER in lower  # one pass; most files never use the allow comment
    pos = index = counted = 0
    while pos < size:
        match = search(lower, pos)
        if match is None:
            return
        # The prefilter matched at a keyword's anchor byte, on the first line (from `pos`,
        # a line start) holding a keyword; keywords never span lines.
        start = lower.rfind(b"\n", 0, match.start()) + 1
        end = lower.find(b"\n", match.end())
        if end == -1:
            end = size
        index += lower.count(b"\n", counted, start)
        counted = start
        pos = end + 1
        if marked and _is_allowed(lower, start, end, block, index):
            continue
        rule_indexes = _rules_on_line(rs, lower, start, end)
        line = data[start:end].decode("utf-8", "replace").rstrip("\r")
        yield from _scan_line(rs, _Line(block, index, end, line), rule_indexes)


def _bare_values_allowed(name: str, policy: AssignmentPolicy) -> bool:
    """Unquoted values count in .env, YAML, INI, shell...; in code they are expressions."""
    suffix = PurePath(name).suffix.lower()
    return suffix not in policy.code_suffixes


def _finding(hit: _Hit, file: str, extra: str = "") -> Finding:
    return Finding(
        file=file,
        line=hit.line,
        rule=hit.rule.id,
        message=f"{hit.rule.description}: {mask(hit.secret)}{extra}",
        fingerprint=fingerprint(hit.rule.id, file, hit.material),
    )


def scan_text(text: str, filename: str = "<text>") -> list[Finding]:
    """Findings in `text` as if it were the file `filename` (its suffix decides whether
    unquoted values count, as in .env and YAML, or not, as in code)."""
    rs = load_rules()
    data = text.encode("utf-8", "replace")
    block = _Block(data, filename, bare_values=_bare_values_allowed(filename, rs.assignment))
    return [_finding(hit, filename) for hit in _scan_block(block, rs)]


def _apply_baseline(report: GuardReport, baseline: set[str] | None) -> None:
    if not baseline:
        return
    kept = [f for f in report.findings if f.fingerprint not in baseline]
    suppressed = len(report.findings) - len(kept)
    report.findings = kept
    if suppressed:
        report.notes.append(f"{suppressed} known finding(s) suppressed by the baseline")


@dataclass
class _FileScan:
    """What one file gave: findings and notes, or only that it is binary or unreadable."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scanned: bool = False
    binary: bool = False


def _scan_file(path: Path, shown: str, rs: RuleSet) -> _FileScan:
    try:
        with path.open("rb") as handle:
            data = handle.read(BINARY_SNIFF_BYTES)
            if is_binary(data):  # only the head decides: the rest is never read
                return _FileScan(binary=True)
            data += handle.read(MAX_SCAN_BYTES + 1 - len(data))
    except OSError as exc:
        return _FileScan(notes=[f"{shown}: cannot read ({exc.strerror or exc})"])
    result = _FileScan(scanned=True)
    if len(data) > MAX_SCAN_BYTES:
        data = data[:MAX_SCAN_BYTES]
        result.notes.append(f"file {shown}: only the first 5 MB scanned")
    block = _Block(data, shown, bare_values=_bare_values_allowed(shown, rs.assignment))
    result.findings = [_finding(hit, shown) for hit in _scan_block(block, rs)]
    return result


def _scan_chunk(chunk: Sequence[tuple[str, str]]) -> list[_FileScan]:
    """A worker's share: (path, displayed name) pairs, results in the same order."""
    rs = load_rules()  # inherited from the parent when forked: no second compilation
    return [_scan_file(Path(path), shown, rs) for path, shown in chunk]


def _can_fork() -> bool:
    """Worker processes are forked, on Linux only, and never from a threaded process (a
    lock another thread holds would stay held in the child)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _sizes(files: Sequence[tuple[Path, str]]) -> list[int]:
    """The bytes each file costs to scan: its size up to MAX_SCAN_BYTES, plus 4 KB (opening
    a file costs about as much as reading that)."""
    sizes = []
    for path, _shown in files:
        try:
            size = min(path.stat().st_size, MAX_SCAN_BYTES)
        except OSError:
            size = 0
        sizes.append(size + 4096)
    return sizes


def _plan_workers(files: Sequence[tuple[Path, str]], workers: int | None) -> tuple[int, list[int]]:
    """How many processes scan (1: this one alone) and, when more than one, each file's
    size. By default, workers only when the work pays for starting them: at least
    PARALLEL_MIN_FILES files and PARALLEL_MIN_BYTES to read, two CPUs, and one worker per
    PARALLEL_BYTES_PER_WORKER at most."""
    if workers is None:
        cpus = _cpu_count()
        if len(files) < PARALLEL_MIN_FILES or cpus < 2 or not _can_fork():
            return 1, []
        sizes = _sizes(files)
        total = sum(sizes)
        if total < PARALLEL_MIN_BYTES:
            return 1, []
        count = min(cpus, max(2, total // PARALLEL_BYTES_PER_WORKER), len(files))
        return count, sizes
    count = min(workers, len(files))
    if count < 2 or not _can_fork():
        return 1, []
    return count, _sizes(files)


def _chunks(
    files: Sequence[tuple[Path, str]], sizes: Sequence[int], count: int
) -> list[list[tuple[str, str]]]:
    """About `count` runs of consecutive files with about the same bytes to read each."""
    target = sum(sizes) / max(1, count)
    chunks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    weight = 0
    for (path, shown), size in zip(files, sizes, strict=True):
        current.append((str(path), shown))
        weight += size
        if weight >= target:
            chunks.append(current)
            current, weight = [], 0
    if current:
        chunks.append(current)
    return chunks


def _scan_in_workers(
    files: Sequence[tuple[Path, str]], sizes: Sequence[int], workers: int
) -> list[_FileScan] | None:
    """The files scanned by `workers` forked processes, in order; None if they could not
    run (the caller then scans here)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    chunks = _chunks(files, sizes, workers * PARALLEL_CHUNKS_PER_WORKER)
    results: list[_FileScan] = []
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        for part in pool.map(_scan_chunk, chunks):
            results.extend(part)
    except (OSError, BrokenProcessPool):
        pool.shutdown(wait=False, cancel_futures=True)
        return None
    except BaseException:  # Ctrl-C or an error in a chunk: the other chunks are not run
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results


def scan_paths(
    paths: Sequence[Path],
    *,
    root: Path | None = None,
    baseline: set[str] | None = None,
    workers: int | None = None,
) -> GuardReport:
    """Scan every file under `paths` (.gitignore respected, binaries skipped, 5 MB a file).

    Paths in findings are relative to `root` (default: the current directory) when they
    are inside it. Raises UsageError for a path that does not exist.

    `workers`: how many processes scan (default: one per CPU when the tree is big enough
    to pay for starting them, else this process alone). The report is the same, in the
    same order, whatever the number.
    """
    started = time.perf_counter()
    rs = load_rules()
    namer = PathNamer(root if root is not None else Path.cwd())
    report = GuardReport()
    walk_notes: list[str] = []
    files: list[tuple[Path, str]] = []
    notes_at: list[int] = []  # how many walk notes came before each file
    for path, resolved in walk_files(paths, walk_notes):
        files.append((path, namer.name(path, resolved)))
        notes_at.append(len(walk_notes))
    count, sizes = _plan_workers(files, workers)
    results = _scan_in_workers(files, sizes, count) if count > 1 else None
    if results is None:
        results = [_scan_file(path, shown, rs) for path, shown in files]
    binaries = taken = 0
    for result, walked in zip(results, notes_at, strict=True):
        report.notes.extend(walk_notes[taken:walked])
        taken = walked
        report.notes.extend(result.notes)
        report.findings.extend(result.findings)
        report.files_scanned += result.scanned
        binaries += result.binary
    report.notes.extend(walk_notes[taken:])
    if binaries:
        report.notes.append(f"{binaries} binary file(s) skipped")
    _apply_baseline(report, baseline)
    report.seconds = time.perf_counter() - started
    return report


# --------------------------------------------------------------------------- history


@dataclass
class _FileDiff:
    commit: str
    path: str | None = None
    lines: list[bytes] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    size: int = 0


_GIT_ESCAPES = {
    b"a": b"\a",
    b"b": b"\b",
    b"f": b"\f",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"v": b"\v",
}


def _diff_path(raw: bytes) -> str | None:
    """The path of a `+++ b/...` line; git C-quotes names with unusual characters."""
    name = raw.rstrip(b"\r\n").rstrip(b"\t")  # git ends names with spaces with a tab
    if name == b"/dev/null":
        return None
    if len(name) >= 2 and name.startswith(b'"') and name.endswith(b'"'):
        name = re.sub(
            rb"\\([0-7]{3}|.)",
            lambda m: (
                bytes([int(m.group(1), 8)])
                if len(m.group(1)) == 3
                else _GIT_ESCAPES.get(m.group(1), m.group(1))
            ),
            name[1:-1],
        )
    text = name.decode("utf-8", "replace")
    return text[2:] if text.startswith("b/") else text


def scan_history(repo: Path, baseline: set[str] | None = None) -> GuardReport:
    """The lines added by every commit on every ref: commit id, file and line per finding.

    Findings carry the file's path in the repository; their fingerprints match those of a
    scan of the work tree run from the repository's root, so one baseline serves both.
    """
    started = time.perf_counter()
    if not repo.is_dir():
        raise UsageError(f"{repo}: no such directory")
    probe = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--git-dir"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        raise UsageError(f"{repo}: not a git repository")
    rs = load_rules()
    report = GuardReport()
    command = [
        "git",
        "-C",
        str(repo),
        "-c",
        "core.quotePath=false",
        "log",
        "-p",
        "--all",
        "--no-color",
        "--unified=0",
        "--no-ext-diff",
        "--no-textconv",
        "--format=%x00commit %H",
    ]
    commits = 0
    capped: set[str] = set()

    def flush(diff: _FileDiff | None) -> None:
        if diff is None or diff.path is None or not diff.lines:
            return
        report.files_scanned += 1
        block = _Block(
            b"\n".join(diff.lines),
            diff.path,
            line_numbers=diff.numbers,
            bare_values=_bare_values_allowed(diff.path, rs.assignment),
        )
        extra = f" (added in commit {diff.commit[:12]})"
        report.findings.extend(_finding(hit, diff.path, extra) for hit in _scan_block(block, rs))

    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as git:
        assert git.stdout is not None
        commit = ""
        diff: _FileDiff | None = None
        in_hunk = False
        next_line = 0
        for raw in git.stdout:
            if raw.startswith(b"\0commit "):
                flush(diff)
                diff, in_hunk = None, False
                commit = raw[8:].strip().decode("ascii", "replace")
                commits += 1
            elif raw.startswith(b"diff --git "):
                flush(diff)
                diff, in_hunk = _FileDiff(commit), False
            elif diff is None:
                continue
            elif not in_hunk and raw.startswith(b"+++ "):
                diff.path = _diff_path(raw[4:])
            elif raw.startswith(b"@@ "):
                in_hunk = True
                header = re.match(rb"@@ -\S+ \+(\d+)", raw)
                next_line = int(header.group(1)) if header else 0
            elif in_hunk and raw.startswith(b"+"):
                content = raw[1:].rstrip(b"\n")
                if diff.size + len(content) > MAX_SCAN_BYTES:
                    if diff.path and diff.path not in capped:
                        capped.add(diff.path)
                        report.notes.append(
                            f"file {diff.path}: only the first 5 MB of a commit's lines scanned"
                        )
                else:
                    diff.lines.append(content)
                    diff.numbers.append(next_line)
                    diff.size += len(content) + 1
                next_line += 1
        flush(diff)
    if git.returncode not in (0, None):
        report.notes.append(f"git log exited with {git.returncode}: the history may be partial")
    report.notes.append(f"history: {commits} commit(s) scanned")
    _apply_baseline(report, baseline)
    report.seconds = time.perf_counter() - started
    return report


# --------------------------------------------------------------------------- baseline


def load_baseline(path: Path) -> set[str]:
    """The fingerprints of a baseline file written by `write_baseline`."""
    import json

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such baseline file") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable baseline file ({exc})") from None
    entries = raw.get("fingerprints") if isinstance(raw, dict) else raw
    if not isinstance(entries, dict | list) or not all(
        isinstance(e, str) and _FINGERPRINT.match(e) for e in entries
    ):
        raise UsageError(f"{path}: not a tcai secrets baseline (expected fingerprints)")
    return set(entries)


def write_baseline(path: Path, report: GuardReport) -> None:
    """Record the report's findings by fingerprint, with file, line and rule to review them.

    The secret is never written, not even masked. Written atomically (temp file + rename).
    """
    import json

    document = {
        "version": BASELINE_VERSION,
        "tool": "tcai scan secrets",
        "fingerprints": {
            f.fingerprint: {"file": f.file, "line": f.line, "rule": f.rule}
            for f in sorted(report.findings, key=lambda f: (f.file, f.line, f.rule))
            if f.fingerprint
        },
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)
