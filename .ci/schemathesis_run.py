"""Fuzz the published contract against a live daemon (docs/http-api.md, "The contract").

    python .ci/schemathesis_run.py                     # SQLite in a temporary folder
    python .ci/schemathesis_run.py --postgres URL      # a throwaway schema on that server
    python .ci/schemathesis_run.py -- --seed 1         # anything after -- goes to schemathesis

A fresh folder, `tcai init`, the templates seeded and one client provisioned (the
`fade-factory` of the document's examples, so generated requests reach a real bot);
then `tcai serve` on a free port of 127.0.0.1 and `schemathesis run` on its
`/api/openapi.json`, with a widget token fetched the way the widget does (an allowed
`Origin` on the config route) handed to the chat and click routes by
`.ci/schemathesis_hooks.py`. Exit status: schemathesis's own, or 1 when the daemon wrote
an error to its log during the run (a client's mistake must never be an error there).
On PostgreSQL the schema is created and dropped here, so no other data is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
CLIENT, BOT = "fade-factory", "fade-factory_main"
MAX_EXAMPLES = 150
CHECKS_LEFT_OUT = {
    # A body the schema accepts can still be refused by the core's rules: a message that
    # is only spaces after cleaning, a URL that is not a booking link, ids of no bot.
    "positive_data_acceptance": "schema-valid requests may still be refused by the core",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tcai(env: dict[str, str], cwd: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tcai", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"tcai {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")


def pg_admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.encode())


def get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_healthy(base: str, daemon: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            sys.exit(f"the daemon exited with {daemon.returncode} before it served")
        try:
            if get(base + "/api/health", {})[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("the daemon did not answer /api/health within 30 s")


def logged_errors(log_dir: Path) -> list[str]:
    lines = []
    for path in sorted(log_dir.glob("tcai*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if json.loads(line).get("level") in ("error", "critical"):
                lines.append(line)
    return lines


def served(log_dir: Path) -> str:
    """What the daemon answered during the run, per route and status (from its access
    log): proof that the generated requests reached the handlers, not only the door."""
    counts: dict[tuple[str, str, int], int] = {}
    for path in log_dir.glob("access*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            key = (entry.get("route", "?"), entry.get("method", "?"), entry.get("status", 0))
            counts[key] = counts.get(key, 0) + 1
    return "\n".join(
        f"  {count:6d}  {status}  {method:7s} {route}"
        for (route, method, status), count in sorted(counts.items())
    )


def schemathesis_command(base: str, extra: list[str]) -> list[str]:
    binary = Path(sys.executable).with_name("schemathesis")
    return [
        str(binary if binary.exists() else shutil.which("schemathesis") or "schemathesis"),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{base}/api/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(CHECKS_LEFT_OUT),
        "--max-examples",
        str(MAX_EXAMPLES),
        # One worker: CPython 3.11's ast.parse is not thread-safe, and hypothesis calls it
        # while describing strategies ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--header",
        f"Origin: {base}",
        "--output-truncate",
        "true",
        *extra,
    ]


def fuzz(database_url: str, work: Path, extra: list[str]) -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    from tcai.config import Settings

    # Only this run's configuration: nothing of the caller's shell or .env leaks in.
    ours = {name.upper() for name in Settings.model_fields}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ours and not key.startswith(("TCAI_", "OPENAI_", "WIDGET_"))
    }
    env.update(
        DATABASE_URL=database_url,
        LOG_DIR=str(work / "logs"),
        TCAI_ENV="development",
        # Every request comes from 127.0.0.1: lift the per-visitor and per-bot limits so
        # the fuzzer reaches the bodies (a 429 is still in the contract).
        CHAT_RATE_LIMIT="1000000/minute",
        CHAT_ADDRESS_RATE_LIMIT="1000000/minute",
        CHAT_BOT_RATE_LIMIT="1000000/minute",
    )
    tcai(env, work, "init")
    tcai(env, work, "templates", "seed")
    tcai(
        env,
        work,
        *("clients", "create", "--template", "barber", "--slug", CLIENT),
        *("--name", "Fade Factory", "--phone", "772-555-0100", "--plan", "enterprise"),
    )
    with (work / "daemon.log").open("wb") as daemon_log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "tcai", "serve", "--port", str(port)],
            env=env,
            cwd=work,
            stdout=daemon_log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(base, daemon)
            status, body = get(f"{base}/api/widget/config/{CLIENT}/{BOT}", {"Origin": base})
            if status != 200:
                sys.exit(f"no widget token: the config route answered {status}: {body[:200]!r}")
            run_env = {
                **env,
                "TCAI_FUZZ_WIDGET_TOKEN": json.loads(body)["token"],
                "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
            }
            command = schemathesis_command(base, extra)
            print("$", " ".join(command), flush=True)
            for name, why in CHECKS_LEFT_OUT.items():
                print(f"  (check left out: {name}: {why})", flush=True)
            result = subprocess.run(command, env=run_env, cwd=work, check=False).returncode
        finally:
            daemon.terminate()
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(10)
    print("what the daemon answered (requests, status, route):")
    print(served(work / "logs"), flush=True)
    errors = logged_errors(work / "logs")
    for line in errors[:20]:
        print("daemon error:", line, file=sys.stderr)
    if errors:
        print(f"the daemon logged {len(errors)} error(s) during the run", file=sys.stderr)
        return result or 1
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="fuzz on PostgreSQL at URL")
    args, extra = parser.parse_known_args()
    extra = [arg for arg in extra if arg != "--"]
    work = Path(tempfile.mkdtemp(prefix="tcai-fuzz-"))
    try:
        if not args.postgres:
            return fuzz(f"sqlite:///{work / 'tcai.db'}", work, extra)
        schema = f"fuzz_{uuid.uuid4().hex[:12]}"
        pg_admin(args.postgres, f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in args.postgres else "?"
            url = f"{args.postgres}{sep}options={quote(f'-csearch_path={schema}')}"
            return fuzz(url, work, extra)
        finally:
            pg_admin(args.postgres, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
