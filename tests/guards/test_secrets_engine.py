"""The secret scanner's speed machinery changes nothing it reports: the anchored prefilter
selects exactly the lines holding a keyword, the walk's shortcut resolves paths as
`Path.resolve` does, and worker processes give the serial report, in the same order.

Secrets are built at run time from random pieces with a fixed seed; none is committed.
"""

from __future__ import annotations

import os
import random
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tcai.guards import secrets
from tcai.guards.common import GuardReport, PathNamer, display_path, iter_files, walk_files
from tcai.guards.secrets import MAX_SCAN_BYTES, load_rules, scan_paths

ALNUM = string.ascii_letters + string.digits


def _keywords() -> list[bytes]:
    return sorted(load_rules().keyword_rules)


# --------------------------------------------------------------------------- prefilter


def test_every_keyword_has_an_anchor_inside_it() -> None:
    keywords = _keywords()
    anchors = secrets._anchors(keywords)
    assert set(anchors) == set(keywords)
    assert all(0 <= at < len(word) for word, at in anchors.items())
    # A handful of rare bytes, not one per keyword: that is what makes the pass fast.
    assert len({word[at] for word, at in anchors.items()}) <= 20


def _random_line(rnd: random.Random, keywords: list[bytes]) -> bytes:
    """Noise, keyword pieces (a keyword cut short, or two run together) and whole ones."""
    noise = string.ascii_letters + string.digits + " _-.:/(=\"'"
    parts: list[bytes] = []
    for _ in range(rnd.randint(0, 6)):
        word = rnd.choice(keywords)
        choice = rnd.random()
        if choice < 0.15:
            parts.append(word.upper() if rnd.random() < 0.5 else word)
        elif choice < 0.6:
            cut = rnd.randint(0, len(word) - 1)
            parts.append(word[:cut] if rnd.random() < 0.5 else word[cut + 1 :])
        else:
            parts.append("".join(rnd.choices(noise, k=rnd.randint(0, 8))).encode())
    return b"".join(parts)


def test_prefilter_matches_where_and_only_where_a_keyword_is() -> None:
    rs = load_rules()
    keywords = _keywords()
    rnd = random.Random(20261206)
    lines = [_random_line(rnd, keywords) for _ in range(4000)]
    lines += [word for word in keywords] + [b"x" + word + b"x" for word in keywords]
    selected = 0
    for line in lines:
        lower = line.lower()
        expected = any(word in lower for word in keywords)
        assert bool(rs.prefilter.search(lower)) == expected, line
        assert bool(rs.keywords.search(lower)) == expected, line
        selected += expected
    assert 0 < selected < len(lines)  # the corpus has lines of both kinds


def test_rules_on_a_line_are_those_whose_keywords_it_holds() -> None:
    rs = load_rules()
    keywords = _keywords()
    rnd = random.Random(7)
    for _ in range(2000):
        lower = _random_line(rnd, keywords).lower()
        expected = sorted(
            i for i, rule in enumerate(rs.rules) if any(k.encode() in lower for k in rule.keywords)
        )
        assert secrets._rules_on_line(rs, lower, 0, len(lower)) == expected, lower


def test_prefilter_finds_the_first_line_with_a_keyword() -> None:
    """_scan_block searches from a line start and takes the line of the match."""
    rs = load_rules()
    keywords = _keywords()
    rnd = random.Random(11)
    for _ in range(300):
        lines = [_random_line(rnd, keywords).lower() for _ in range(rnd.randint(1, 8))]
        text = b"\n".join(lines)
        match = rs.prefilter.search(text)
        first = next((i for i, line in enumerate(lines) if any(k in line for k in keywords)), None)
        if first is None:
            assert match is None
            continue
        assert match is not None
        assert text.count(b"\n", 0, match.start()) == first


def test_the_rules_file_reads_the_same_with_either_yaml_parser() -> None:
    text = secrets.RULES_FILE.read_text(encoding="utf-8")
    assert secrets._read_rules_file() == yaml.safe_load(text)


# --------------------------------------------------------------------------- the walk


def test_walk_resolves_paths_like_path_resolve(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (real / "a.txt").write_text("a")
    (real / "sub" / "b.txt").write_text("b")
    (tmp_path / "outside.txt").write_text("c")
    (real / "link.txt").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    (real / "sub" / "dangling.txt").symlink_to(tmp_path / "missing")
    for given in (real, tmp_path / "alias", tmp_path / "alias" / "sub" / ".." / "a.txt"):
        walked = list(walk_files([given], []))
        assert [path for path, _ in walked] == list(iter_files([given], []))
        assert all(resolved == path.resolve() for path, resolved in walked)
        for root in (real, tmp_path / "alias", tmp_path / "real" / "sub", tmp_path / "else"):
            namer = PathNamer(root)
            for path, resolved in walked:
                assert namer.name(path, resolved) == display_path(path, root)
    names = sorted(PathNamer(real).name(p, r) for p, r in walk_files([real], []))
    assert names == [str(real / "link.txt"), "a.txt", "sub/b.txt"]  # the link leads out


def test_relative_paths_are_named_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.env").write_text("x")
    monkeypatch.chdir(tmp_path / "d")
    for given in (Path("."), Path("f.env"), Path("../d")):
        [(path, resolved)] = list(walk_files([given], []))
        assert resolved == path.resolve()
        assert PathNamer(Path(".")).name(path, resolved) == display_path(path, Path("."))


# --------------------------------------------------------------------------- workers


def _planted_tree(root: Path) -> int:
    """Many files, a few with secrets built from pieces; returns the planted count."""
    rnd = random.Random(5)

    def pick(alphabet: str, n: int) -> str:
        return "".join(rnd.choices(alphabet, k=n))

    planted = 0
    filler = "def handler(task, password_hash):\n    token_url = task.url\n    pass\n"
    for i in range(90):
        folder = root / f"pkg{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [filler] * rnd.randint(1, 40)
        if i % 9 == 0:
            lines.insert(rnd.randint(0, len(lines)), f'GITHUB = "ghp_{pick(ALNUM, 36)}"\n')
            planted += 1
        if i % 13 == 0:
            stripe = "sk_" + "live_" + pick(ALNUM, 24)
            lines.append(f'STRIPE = "{stripe}"  # tcai: allow-secret\n')  # not reported
            lines.append(f"# tcai: allow-secret\nOTHER = '{stripe}'\n")  # not reported
            lines.append(f"AGAIN = '{stripe}'\n")
            planted += 1
        (folder / f"mod{i}.py").write_text("".join(lines))
    (root / "pkg0" / ".env").write_text(f"DB_PASSWORD={pick(ALNUM, 20)}\n")
    planted += 1
    (root / "pkg1" / "blob.bin").write_bytes(b"\x00\x01" + b"ghp_" + pick(ALNUM, 36).encode())
    (root / "pkg2" / "latin1.cfg").write_bytes(b"caf\xe9 = cr\xe8me\n\xff\xfe\n")
    late_nul = b"x" * (secrets.BINARY_SNIFF_BYTES + 10) + b"\x00\n"
    (root / "pkg3" / "late-nul.env").write_bytes(late_nul + f"TOKEN={pick(ALNUM, 30)}\n".encode())
    planted += 1
    with (root / "pkg4" / "huge.log").open("wb") as handle:
        handle.write(
            f"aws_access_key_id = AKIA{pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}\n".encode()
        )
        handle.write(b"log line without secrets\n" * 1000)  # the head is text, not a hole
        handle.seek(MAX_SCAN_BYTES + 100)
        handle.write(b"end\n")
    planted += 1
    (root / "pkg5" / "loop").symlink_to(root, target_is_directory=True)
    (root / "pkg6" / "twin.py").symlink_to(root / "pkg0" / "mod0.py")
    return planted


def _as_data(report: GuardReport) -> tuple[object, ...]:
    return (
        [(f.file, f.line, f.rule, f.message, f.fingerprint) for f in report.findings],
        report.notes,
        report.files_scanned,
    )


def test_workers_give_the_serial_report_in_the_same_order(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    planted = _planted_tree(root)
    serial = scan_paths([root], root=root, workers=1)
    assert len(serial.findings) == planted
    assert "1 binary file(s) skipped" in serial.notes
    assert "file pkg4/huge.log: only the first 5 MB scanned" in serial.notes
    for workers in (2, 3, 16):
        assert _as_data(scan_paths([root], root=root, workers=workers)) == _as_data(serial)
    known = {serial.findings[0].fingerprint, serial.findings[-1].fingerprint}
    with_baseline = scan_paths([root], root=root, baseline=known, workers=1)
    assert _as_data(scan_paths([root], root=root, baseline=known, workers=2)) == _as_data(
        with_baseline
    )


def test_the_default_uses_workers_above_the_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tree"
    _planted_tree(root)
    serial = scan_paths([root], root=root, workers=1)
    used: list[int] = []
    real = secrets._scan_in_workers

    def counting(
        files: list[tuple[Path, str]], sizes: list[int], workers: int
    ) -> list[secrets._FileScan] | None:
        used.append(workers)
        return real(files, sizes, workers)

    monkeypatch.setattr(secrets, "_scan_in_workers", counting)
    assert _as_data(scan_paths([root], root=root)) == _as_data(serial)
    assert used == []  # a small tree: this process alone
    monkeypatch.setattr(secrets, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(secrets, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(secrets, "PARALLEL_BYTES_PER_WORKER", 1)
    can = secrets._can_fork() and secrets._cpu_count() > 1
    assert _as_data(scan_paths([root], root=root)) == _as_data(serial)
    walked = len(list(walk_files([root], [])))
    assert used == ([min(secrets._cpu_count(), walked)] if can else []), used
    used.clear()
    monkeypatch.setattr(secrets, "PARALLEL_BYTES_PER_WORKER", 10**12)  # 2: the least
    assert _as_data(scan_paths([root], root=root)) == _as_data(serial)
    assert used == ([2] if can else []), used


def test_walk_notes_keep_their_place_among_file_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A note the walk makes between two files stays between their notes."""
    root = tmp_path / "tree"
    _planted_tree(root)
    real_walk = secrets.walk_files

    def noisy_walk(paths: list[Path], notes: list[str]) -> Iterator[tuple[Path, Path]]:
        for i, item in enumerate(real_walk(paths, notes)):
            notes.append(f"walk note {i}")
            yield item
        notes.append("walk note at the end")

    monkeypatch.setattr(secrets, "walk_files", noisy_walk)
    serial = scan_paths([root], root=root, workers=1)
    assert serial.notes[0] == "walk note 0" and "walk note at the end" in serial.notes
    assert _as_data(scan_paths([root], root=root, workers=2)) == _as_data(serial)


def test_a_pool_that_cannot_start_falls_back_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tree"
    _planted_tree(root)
    serial = scan_paths([root], root=root, workers=1)

    def no_fork() -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    assert _as_data(scan_paths([root], root=root, workers=2)) == _as_data(serial)


def test_chunks_are_consecutive_runs_of_similar_size(tmp_path: Path) -> None:
    files = []
    for i, size in enumerate([10, 5000, 200_000, 0, 70_000, 3, 1_000_000, 40] * 5):
        path = tmp_path / f"f{i}.txt"
        path.write_bytes(b"x" * size)
        files.append((path, path.name))
    sizes = secrets._sizes(files)
    assert sizes[0] == 10 + 4096
    for count in (1, 2, 5, 16, 100):
        chunks = secrets._chunks(files, sizes, count)
        assert [pair for chunk in chunks for pair in chunk] == [(str(p), n) for p, n in files]
        assert all(chunks) and len(chunks) <= count + 1
