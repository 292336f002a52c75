"""The secret scanner: a labelled corpus (recall and precision), masking, allow comments,
baselines, the walk's bad inputs, history, and our own repository.

Every positive is generated at run time from pieces with a fixed seed, so no real-looking
credential is committed; lines that must look real in this file carry the allow comment.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import string
import subprocess
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tcai.errors import UsageError
from tcai.guards.common import GuardReport, to_sarif
from tcai.guards.secrets import (
    MAX_SCAN_BYTES,
    load_baseline,
    load_rules,
    rule_descriptions,
    scan_history,
    scan_paths,
    scan_text,
    write_baseline,
)
from tests.helpers import REPO

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"
MASKED = re.compile(r"(?P<shown>[^\s…]{0,4})… \((?P<length>\d+) chars\)")


class Gen:
    """Random pieces with a fixed seed: the same corpus on every run."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)

    def s(self, alphabet: str, n: int) -> str:
        return "".join(self.rnd.choices(alphabet, k=n))

    def digits(self, n: int) -> str:
        return self.rnd.choice("123456789") + self.s(string.digits, n - 1)

    def password(self, n: int) -> str:
        symbols = "!@^*-_+=~"
        chars = [
            self.rnd.choice(string.ascii_lowercase),
            self.rnd.choice(string.ascii_uppercase),
            self.rnd.choice(string.digits),
            self.rnd.choice(symbols),
        ]
        chars += self.rnd.choices(ALNUM + symbols, k=n - 4)
        self.rnd.shuffle(chars)
        if not chars[0].isalnum():
            chars[0] = self.rnd.choice(string.ascii_letters)
        return "".join(chars)

    def b64url(self, raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def jwt(self) -> str:
        header = self.b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = {"sub": self.digits(8), "name": "Ada", "iat": int(self.digits(10))}
        body = self.b64url(json.dumps(payload).encode())
        return f"{header}.{body}.{self.s(URLSAFE, 43)}"

    def pem_body(self, lines: int = 4) -> list[str]:
        return [self.s(B64, 64) for _ in range(lines)]


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Sample:
    filename: str
    text: str
    rule: str | None  # None: a negative, nothing may be reported
    line: int = 0  # the line the finding must be on (0: the only line, or any)
    label: str = ""


# (rule, variable name, generator) for provider rules: one secret per format.
PROVIDER_SECRETS: list[tuple[str, str, Callable[[Gen], str]]] = [
    (
        "aws-access-key-id",
        "AWS_ACCESS_KEY_ID",
        lambda g: "AKIA" + g.s("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
    ),
    (
        "aws-access-key-id",
        "AWS_ACCESS_KEY_ID",
        lambda g: "ASIA" + g.s("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
    ),
    ("aws-secret-access-key", "AWS_SECRET_ACCESS_KEY", lambda g: g.s(B64, 40)),
    ("github-pat", "GITHUB_TOKEN", lambda g: "ghp_" + g.s(ALNUM, 36)),
    ("github-oauth-token", "GH_OAUTH", lambda g: "gho_" + g.s(ALNUM, 36)),
    ("github-app-token", "GH_APP_TOKEN", lambda g: "ghu_" + g.s(ALNUM, 36)),
    ("github-app-token", "GH_INSTALLATION", lambda g: "ghs_" + g.s(ALNUM, 36)),
    ("github-refresh-token", "GH_REFRESH", lambda g: "ghr_" + g.s(ALNUM, 36)),
    (
        "github-fine-grained-pat",
        "GH_PAT",
        lambda g: "github_pat_" + g.s(ALNUM, 22) + "_" + g.s(ALNUM, 59),
    ),
    ("gitlab-token", "GITLAB_TOKEN", lambda g: "glpat-" + g.s(URLSAFE, 20)),
    ("gitlab-token", "GITLAB_DEPLOY", lambda g: "gldt-" + g.s(URLSAFE, 20)),
    ("gitlab-runner-registration-token", "RUNNER_REG", lambda g: "GR1348941" + g.s(URLSAFE, 20)),
    (
        "slack-token",
        "SLACK_BOT_TOKEN",
        lambda g: f"xoxb-{g.digits(12)}-{g.digits(13)}-{g.s(ALNUM, 24)}",
    ),
    (
        "slack-token",
        "SLACK_USER_TOKEN",
        lambda g: f"xoxp-{g.digits(11)}-{g.digits(11)}-{g.digits(13)}-{g.s(HEX, 32)}",
    ),
    ("slack-token", "SLACK_WS", lambda g: f"xoxa-2-{g.digits(11)}-{g.s(ALNUM, 30)}"),
    ("slack-token", "SLACK_REFRESH", lambda g: f"xoxr-{g.digits(12)}-{g.s(ALNUM, 40)}"),
    (
        "slack-app-token",
        "SLACK_APP_TOKEN",
        lambda g: f"xapp-1-A{g.s(UPPER_DIGITS, 10)}-{g.digits(13)}-{g.s(HEX, 64)}",
    ),
    (
        "slack-webhook-url",
        "SLACK_WEBHOOK",
        lambda g: (
            f"https://hooks.slack.com/services/T{g.s(UPPER_DIGITS, 8)}/B{g.s(UPPER_DIGITS, 10)}/{g.s(ALNUM, 24)}"
        ),
    ),
    ("stripe-secret-key", "STRIPE_SECRET", lambda g: "sk_live_" + g.s(ALNUM, 24)),
    ("stripe-secret-key", "STRIPE_TEST_SECRET", lambda g: "sk_test_51" + g.s(ALNUM, 97)),
    ("stripe-restricted-key", "STRIPE_RESTRICTED", lambda g: "rk_live_" + g.s(ALNUM, 24)),
    ("stripe-restricted-key", "STRIPE_RESTRICTED_TEST", lambda g: "rk_test_" + g.s(ALNUM, 32)),
    ("stripe-webhook-secret", "STRIPE_WEBHOOK", lambda g: "whsec_" + g.s(ALNUM, 32)),
    (
        "openai-api-key",
        "OPENAI_API_KEY",
        lambda g: "sk-" + g.s(ALNUM, 20) + "T3BlbkFJ" + g.s(ALNUM, 20),
    ),
    (
        "openai-api-key",
        "OPENAI_PROJECT_KEY",
        lambda g: "sk-proj-" + g.s(URLSAFE, 74) + "T3BlbkFJ" + g.s(URLSAFE, 74),
    ),
    ("anthropic-api-key", "ANTHROPIC_API_KEY", lambda g: "sk-ant-api03-" + g.s(URLSAFE, 93) + "AA"),
    ("google-api-key", "GOOGLE_API_KEY", lambda g: "AIza" + g.s(URLSAFE, 35)),
    ("twilio-api-key", "TWILIO_API_KEY", lambda g: "SK" + g.s(HEX, 32)),
    ("twilio-auth-token", "TWILIO_AUTH_TOKEN", lambda g: g.s(HEX, 32)),
    (
        "sendgrid-api-key",
        "SENDGRID_API_KEY",
        lambda g: "SG." + g.s(URLSAFE, 22) + "." + g.s(URLSAFE, 43),
    ),
    ("mailgun-api-key", "MAILGUN_API_KEY", lambda g: "key-" + g.s(HEX, 32)),
    ("npm-access-token", "NPM_TOKEN", lambda g: "npm_" + g.s(ALNUM, 36)),
    ("pypi-upload-token", "PYPI_TOKEN", lambda g: "pypi-AgEIcHlwaS5vcmc" + g.s(URLSAFE, 120)),
    (
        "discord-bot-token",
        "DISCORD_TOKEN",
        lambda g: "M" + g.s(ALNUM, 23) + "." + g.s(URLSAFE, 6) + "." + g.s(URLSAFE, 27),
    ),
    (
        "discord-webhook-url",
        "DISCORD_WEBHOOK",
        lambda g: f"https://discord.com/api/webhooks/{g.digits(18)}/{g.s(URLSAFE, 68)}",
    ),
    ("telegram-bot-token", "TELEGRAM_BOT_TOKEN", lambda g: f"{g.digits(10)}:AA{g.s(URLSAFE, 33)}"),
    ("huggingface-token", "HF_TOKEN", lambda g: "hf_" + g.s(string.ascii_letters, 34)),
    ("shopify-token", "SHOPIFY_TOKEN", lambda g: "shpat_" + g.s(HEX, 32)),
    ("digitalocean-token", "DO_TOKEN", lambda g: "dop_v1_" + g.s(HEX, 64)),
    ("jwt", "SESSION_JWT", lambda g: g.jwt()),
]

# Secrets the generic rule must find: (variable name, generator).
GENERIC_SECRETS: list[tuple[str, Callable[[Gen], str]]] = [
    ("PASSWORD", lambda g: g.password(12)),
    ("DB_PASSWORD", lambda g: g.password(20)),
    ("SMTP_PASS", lambda g: g.password(10)),
    ("passwd", lambda g: g.password(14)),
    ("API_KEY", lambda g: g.s(ALNUM, 32)),
    ("X_API_KEY", lambda g: g.s(URLSAFE, 40)),
    ("CLIENT_SECRET", lambda g: g.s(URLSAFE, 43)),
    ("AUTH_TOKEN", lambda g: g.s(ALNUM, 40)),
    ("ACCESS_TOKEN", lambda g: g.s(URLSAFE, 64)),
    ("SECRET_KEY", lambda g: g.s(HEX, 64)),
    ("SESSION_SECRET", lambda g: g.s(URLSAFE, 48)),
    ("WEBHOOK_SECRET", lambda g: g.s(HEX, 32)),
    ("PRIVATE_KEY", lambda g: g.s(B64, 44)),
    ("ENCRYPTION_KEY", lambda g: g.s(B64, 32) + "="),
    ("credentials", lambda g: g.s(ALNUM, 24)),
    ("MASTER_KEY", lambda g: g.s(HEX, 48)),
]


def camel(name: str) -> str:
    first, *rest = name.lower().split("_")
    return first + "".join(w.capitalize() for w in rest)


# Every format a secret is written in: (label, filename, template).
FORMATS: list[tuple[str, str, Callable[[str, str], str]]] = [
    ("python", "settings.py", lambda n, v: f'import os\n\n{n.lower()} = "{v}"\n'),
    ("python-kwarg", "client.py", lambda n, v: f"client = Client(\n    {n.lower()}='{v}',\n)\n"),
    ("js", "config.js", lambda n, v: f'const {camel(n)} = "{v}";\n'),
    (
        "ts-object",
        "config.ts",
        lambda n, v: f"export const config = {{\n  {camel(n)}: '{v}',\n}};\n",
    ),
    ("env", ".env", lambda n, v: f"# service\n{n}={v}\n"),
    ("env-quoted", ".env.production", lambda n, v: f'# service\n{n}="{v}"\n'),
    ("env-export", "deploy.sh", lambda n, v: f"#!/bin/sh\nexport {n}='{v}'\n"),
    ("yaml", "config.yaml", lambda n, v: f"service:\n  {n.lower()}: {v}\n"),
    ("yaml-quoted", "values.yml", lambda n, v: f'env:\n  - name: app\n    {n.lower()}: "{v}"\n'),
    ("json", "config.json", lambda n, v: f'{{\n  "name": "app",\n  "{camel(n)}": "{v}"\n}}\n'),
    ("toml", "config.toml", lambda n, v: f'[service]\n{n.lower()} = "{v}"\n'),
    ("python-dict", "settings.py", lambda n, v: f'CONFIG = {{\n    "{n.lower()}": "{v}",\n}}\n'),
    ("go", "main.go", lambda n, v: f'func main() {{\n\t{camel(n)} := "{v}"\n}}\n'),
    ("ruby", "config.rb", lambda n, v: f'CONFIG = {{ :{n.lower()} => "{v}" }}\n'),
    (
        "compose",
        "docker-compose.yml",
        lambda n, v: f"services:\n  app:\n    environment:\n      - {n}={v}\n",
    ),
    (
        "properties",
        "application.properties",
        lambda n, v: f"app.{n.lower().replace('_', '.')}={v}\n",
    ),
    ("ini", "app.ini", lambda n, v: f"[app]\n{n.lower()} = {v}\n"),
]
# Formats that drop the variable's name: only for secrets recognisable on their own.
UNNAMED_FORMATS: list[tuple[str, str, Callable[[str, str], str]]] = [
    ("header", "client.py", lambda n, v: f'headers = {{"Authorization": "Bearer {v}"}}\n'),
    (
        "curl",
        "deploy.sh",
        lambda n, v: f'curl -H "Authorization: Bearer {v}" https://api.invalid/\n',
    ),
    ("markdown", "README.md", lambda n, v: f"# Setup\n\nRun `tool login {v}` once.\n"),
]
NAMED_ONLY = {"aws-secret-access-key", "twilio-auth-token", "discord-bot-token"}


def _line_of(text: str, value: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if value in line)


def _pem(g: Gen, kind: str) -> tuple[list[str], str]:
    label = f"{kind} PRIVATE KEY" if kind else "PRIVATE KEY"
    header = f"-----BEGIN {label}-----"
    if kind == "OPENSSH":
        body = [
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            *g.pem_body(3),
        ]
    elif kind == "RSA-LEGACY-ENCRYPTED":
        header = "-----BEGIN RSA PRIVATE KEY-----"
        label = "RSA PRIVATE KEY"
        body = [
            "Proc-Type: 4,ENCRYPTED",
            f"DEK-Info: AES-128-CBC,{g.s(HEX, 32).upper()}",
            "",
            *g.pem_body(3),
        ]
    else:
        body = g.pem_body(4)
    return [header, *body, f"-----END {label}-----"], header


def build_positives(g: Gen) -> list[Sample]:
    samples: list[Sample] = []
    for rule, name, make in PROVIDER_SECRETS:
        formats = FORMATS if rule in NAMED_ONLY else FORMATS + UNNAMED_FORMATS
        for label, filename, template in formats:
            secret = make(g)
            text = template(name, secret)
            samples.append(Sample(filename, text, rule, _line_of(text, secret), f"{rule}/{label}"))
    for name, make in GENERIC_SECRETS:
        formats = FORMATS + UNNAMED_FORMATS[:2] if "PASS" not in name.upper() else FORMATS
        for label, filename, template in formats:
            secret = make(g)
            text = template(name, secret)
            samples.append(
                Sample(
                    filename,
                    text,
                    "generic-secret",
                    _line_of(text, secret),
                    f"generic {name}/{label}",
                )
            )
    # Private keys: a .pem file, a Python triple-quoted string, a YAML block scalar, an .env
    # value and a JSON string with escaped newlines.
    for kind in ("RSA", "EC", "DSA", "ENCRYPTED", "", "OPENSSH", "RSA-LEGACY-ENCRYPTED", "PGP"):
        if kind == "PGP":
            lines = [
                "-----BEGIN PGP PRIVATE KEY BLOCK-----",
                "",
                *g.pem_body(3),
                "-----END PGP PRIVATE KEY BLOCK-----",
            ]
            header = lines[0]
        else:
            lines, header = _pem(g, kind)
        block = "\n".join(lines)
        escaped = "\\n".join(lines)
        indented = "\n".join("    " + line for line in lines)
        for label, filename, text in [
            ("pem", "server.key", block + "\n"),
            ("python", "keys.py", f'KEY = """{block}\n"""\n'),
            ("yaml", "tls.yaml", f"tls:\n  key: |\n{indented}\n"),
            ("env", ".env", f'TLS_KEY="{escaped}"\n'),
            ("json", "key.json", json.dumps({"key": block}, indent=2) + "\n"),
        ]:
            samples.append(
                Sample(
                    filename,
                    text,
                    "private-key",
                    _line_of(text, header),
                    f"pem {kind or 'PKCS8'}/{label}",
                )
            )
    # Service-account JSON: reported once, as such, not also as a private key.
    for indent in (2, None):
        lines, _ = _pem(g, "")
        account = {
            "type": "service_account",
            "project_id": "tcai-demo",
            "private_key_id": g.s(HEX, 40),
            "private_key": "\n".join(lines) + "\n",
            "client_email": "bot@tcai-demo.iam.gserviceaccount.com",
            "client_id": g.digits(21),
        }
        text = json.dumps(account, indent=indent) + "\n"
        line = _line_of(text, '"private_key":')
        samples.append(
            Sample(
                "service-account.json",
                text,
                "google-service-account",
                line,
                f"service account indent={indent}",
            )
        )
    # A registry login in a Docker config: base64 of user:password under "auth".
    for _ in range(3):
        auth = base64.b64encode(f"ci-bot:{g.s(ALNUM, 24)}".encode()).decode()
        text = json.dumps({"auths": {"registry.invalid": {"auth": auth}}}, indent=2) + "\n"
        samples.append(
            Sample("config.json", text, "generic-secret", _line_of(text, auth), "docker auth")
        )
    # URLs with passwords in configuration.
    urls = [
        (
            "database-url-password",
            "DATABASE_URL",
            lambda: f"postgres://app:{g.s(ALNUM, 16)}@db.internal:5432/app",
        ),
        (
            "database-url-password",
            "DATABASE_URL",
            lambda: f"postgresql+psycopg://tcai:{g.password(18)}@10.0.0.5/tcai?sslmode=require",
        ),
        (
            "database-url-password",
            "MYSQL_URL",
            lambda: f"mysql://root:{g.s(ALNUM, 20)}@mysql:3306/shop",
        ),
        (
            "amqp-url-password",
            "BROKER_URL",
            lambda: f"amqp://worker:{g.s(ALNUM, 18)}@rabbit:5672/jobs",
        ),
        ("redis-url-password", "REDIS_URL", lambda: f"redis://:{g.s(ALNUM, 24)}@cache:6379/0"),
        (
            "redis-url-password",
            "CACHE_URL",
            lambda: f"rediss://default:{g.s(ALNUM, 32)}@redis.example.net:6380",
        ),
        (
            "mongodb-url-password",
            "MONGO_URL",
            lambda: f"mongodb+srv://app:{g.s(ALNUM, 20)}@cluster0.ab1cd.mongodb.net/app",
        ),
        (
            "mongodb-url-password",
            "MONGO_URL",
            lambda: f"mongodb://admin:{g.s(ALNUM, 16)}@mongo1:27017,mongo2:27017/?replicaSet=rs0",
        ),
    ]
    url_formats = [
        f for f in FORMATS if f[0] in {"python", "env", "env-quoted", "yaml", "json", "toml"}
    ]
    url_formats.append(("ini", "alembic.ini", lambda n, v: f"[alembic]\nsqlalchemy.url = {v}\n"))
    for rule, name, make in urls:
        for label, filename, template in url_formats:
            url = make()
            text = template(name, url)
            samples.append(Sample(filename, text, rule, _line_of(text, url), f"{rule}/{label}"))
    return samples


def build_negatives(g: Gen) -> list[Sample]:
    texts: list[tuple[str, str, str]] = []

    def add(filename: str, text: str, label: str = "") -> None:
        texts.append((filename, text, label or text.strip().splitlines()[0][:60]))

    sha40, sha64, uuid = (
        g.s(HEX, 40),
        g.s(HEX, 64),
        f"{g.s(HEX, 8)}-{g.s(HEX, 4)}-4{g.s(HEX, 3)}-a{g.s(HEX, 3)}-{g.s(HEX, 12)}",
    )
    integrity = base64.b64encode(g.rnd.randbytes(64)).decode()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + g.rnd.randbytes(300)).decode()
    # Placeholders and lookups.
    add(".env", "API_KEY=your-api-key-here\n")
    add(".env", "OPENAI_API_KEY=sk-...\n")
    add(".env.example", "SECRET_KEY=changeme\nDB_PASSWORD=change-me-please\n")
    add(".env", "STRIPE_SECRET_KEY=sk_test_xxxxxxxxxxxxxxxxxxxxxxxx\n")
    add(".env", "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")
    add(".env", "SESSION_SECRET=<generate with tcai init>\n")
    add(".env", "export TOKEN=$GITHUB_TOKEN\nexport PASSWORD=${DB_PASSWORD:-}\n")
    add("config.yaml", "db:\n  password: ${DB_PASSWORD}\n  token: '{{ vault_token }}'\n")
    add("config.yaml", "password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n")
    add(
        "settings.py",
        'api_key = os.environ["OPENAI_API_KEY"]\ntoken = os.getenv("GITHUB_TOKEN", "")\n',
    )
    add(
        "settings.py",
        "SECRET_KEY = os.environ.get('SECRET_KEY')\nDATABASE_PASSWORD = env('DATABASE_PASSWORD')\n",
    )
    add("settings.py", 'PASSWORD = "%(password)s"\nAPI_TOKEN = "{api_token}"\n')
    add(
        "app.js",
        "const apiKey = process.env.API_KEY;\nconst secret = import.meta.env.VITE_SECRET;\n",
    )
    add("config.toml", 'api_key = "YOUR_API_KEY_HERE"\npassword = "<password>"\n')
    add("settings.py", 'SECRET_KEY = "django-insecure-change-me-before-deploying"\n')
    add(
        "creds.ini",
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    )
    add(
        "notify.py",
        'SLACK_WEBHOOK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"\n',
    )
    add(
        "docs.md",
        "Set `OPENAI_API_KEY` to your key (it starts with `sk-`), e.g. `OPENAI_API_KEY=sk-your-key`.\n",
    )
    # Test fixtures and obvious fakes.
    add(
        "test_login.py",
        'def test_login(client):\n    client.post("/login", json={"username": "ada", "password": "password"})\n',
    )
    add("fixtures.json", '{"user": "ada", "password": "password", "token": "test-token"}\n')
    add(
        "test_api.py",
        'API_KEY = "dummy-api-key-for-tests"\nTOKEN = "test_token_value_for_unit_tests"\n',
    )
    add("test_api.py", 'password = "hunter2"\npassword = "test1234"\npassword = "Passw0rd!"\n')
    add(
        "conftest.py",
        'SECRET = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"\nsecret = "abcdefghijklmnopqrstuvwxyz"\n',
    )
    add("conftest.py", 'secret_key = "0123456789abcdef0123456789abcdef"\npassword = "1234567890"\n')
    add(
        "conftest.py",
        'token = "not-a-real-token-just-for-tests"\napi_key = "my-super-secret-api-key"\n',
    )
    add("conftest.py", 'password = "correct horse battery staple"\n')
    add(
        "docker-compose.yml",
        "environment:\n  POSTGRES_PASSWORD: postgres\n  POSTGRES_USER: postgres\n",
    )
    # Hashes, identifiers and encodings that are not secrets.
    add("release.py", f'commit = "{sha40}"\nCOMMIT_SHA = "{sha40}"\n', "git sha")
    add(
        ".pre-commit-config.yaml",
        f"repos:\n  - repo: https://github.com/astral-sh/ruff-pre-commit\n    rev: {sha40}\n",
        "pre-commit rev",
    )
    add(
        "checksums.py",
        f'sha256 = "{sha64}"\nchecksum = "{sha64}"\ntoken_sha256 = "{sha64}"\n',
        "sha256",
    )
    add("requirements.txt", f"tcai==1.0 \\\n    --hash=sha256:{sha64}\n", "requirements hash")
    add("Dockerfile", f"FROM python:3.11-slim@sha256:{sha64}\n", "docker digest")
    add(
        "models.py",
        f'password_hash = "$argon2id$v=19$m=65536,t=3,p=4${g.s(B64, 22)}${g.s(B64, 43)}"\n',
        "argon2 hash",
    )
    add("models.py", f'api_key_hash = "{sha64}"\nsecret_fingerprint = "{sha64}"\n', "hash names")
    add("config.py", f'client_id = "{uuid}"\napi_key_id = "{uuid}"\ntoken = "{uuid}"\n', "uuids")
    add(
        "package-lock.json",
        f'{{\n  "node_modules/left-pad": {{\n    "version": "1.3.0",\n    "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",\n    "integrity": "sha512-{integrity}"\n  }}\n}}\n',
        "npm integrity",
    )
    add(
        "yarn.lock",
        f'left-pad@^1.3.0:\n  version "1.3.0"\n  integrity sha512-{integrity}\n',
        "yarn integrity",
    )
    add(
        "poetry.lock",
        f'[[package]]\nname = "tcai"\nfiles = [\n    {{file = "tcai-1.0.tar.gz", hash = "sha256:{sha64}"}},\n]\n',
        "poetry hash",
    )
    add("icons.py", f'ICON = "data:image/png;base64,{png}"\n', "data uri python")
    add("page.css", f".logo {{ background: url(data:image/png;base64,{png}); }}\n", "data uri css")
    add(
        "manifest.json",
        f'{{"icon": "data:image/png;base64,{png}", "token_icon": "data:image/png;base64,{png}"}}\n',
        "data uri json",
    )
    add("fixtures.py", f'SAMPLE_PNG = "{png[:120]}"\n', "base64 fixture")
    add(".env", f"STRIPE_PUBLISHABLE_KEY=pk_test_{g.s(ALNUM, 99)}\n", "pk_test")
    add("checkout.js", f'const stripe = Stripe("pk_live_{g.s(ALNUM, 24)}");\n', "pk_live")
    # Public material and documentation.
    add(
        "ca.pem",
        "-----BEGIN CERTIFICATE-----\n"
        + "\n".join(g.pem_body(4))
        + "\n-----END CERTIFICATE-----\n",
        "certificate",
    )
    add(
        "id.pub",
        "-----BEGIN PUBLIC KEY-----\n" + "\n".join(g.pem_body(3)) + "\n-----END PUBLIC KEY-----\n",
        "public key",
    )
    add(
        "README.md",
        "Your key file looks like this:\n\n    -----BEGIN RSA PRIVATE KEY-----\n    ...\n    -----END RSA PRIVATE KEY-----\n",
        "pem example",
    )
    add(
        "pem.py",
        'HEADER = "-----BEGIN RSA PRIVATE KEY-----"\nFOOTER = "-----END RSA PRIVATE KEY-----"\n',
        "pem constants",
    )
    add(
        "api.md",
        f"    curl -H 'Authorization: Bearer {g.jwt()}' https://api.example.test/  # tcai: allow-secret\n",
        "jwt allowed",
    )
    add("api.md", f"<!-- tcai: allow-secret -->\n    token: {g.jwt()}\n", "jwt allowed line before")
    # Code that handles secrets without containing one.
    add(
        "auth.py",
        "token = get_token()\npassword = getpass.getpass('Password: ')\nsecret = secrets.token_urlsafe(32)\n",
    )
    add(
        "auth.py",
        "self.api_key = api_key\nauth = HTTPBasicAuth(username, password)\nif password == confirm_password:\n    pass\n",
    )
    add(
        "auth.py",
        "def login(username: str, password: str = None) -> Token:\n    return authenticate(username=username, password=password)\n",
    )
    add(
        "oauth.py",
        'TOKEN_URL = "https://oauth2.googleapis.com/token"\npassword_reset_url = "/accounts/password/reset/"\ntoken_type = "Bearer"\n',
    )
    add(
        "settings.py",
        'AUTH_USER_MODEL = "accounts.CustomUser"\nAUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]\n',
    )
    add(
        "settings.py",
        'PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]\ntoken_endpoint_auth_method = "client_secret_basic"\n',
    )
    add("tokenizer.py", 'EOS_TOKEN = "<|endoftext|>"\ntoken_pattern = r"(?u)\\b\\w\\w+\\b"\n')
    add(
        "spinner.css",
        ".sk-spinner-wandering-cubes-animation-delay-long { animation-delay: -0.9s; }\n",
    )
    add(
        "task.py",
        "task_token_bucket_capacity = 100\npassword_min_length = 12\nTOKEN_TTL_SECONDS = 3600\n",
    )
    add(
        "forms.py",
        'password = forms.CharField(widget=forms.PasswordInput, help_text="Use at least 12 characters")\n',
    )
    add(
        "csrf.html",
        '<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">\n<input type="password" name="password">\n',
    )
    add("main.go", 'password := os.Getenv("DB_PASSWORD")\ntoken := r.Header.Get("Authorization")\n')
    add(
        "secrets.tf",
        'resource "aws_secretsmanager_secret" "db" {\n  name = "prod/db/password"\n}\n',
    )
    add(
        "workflow.yml",
        "env:\n  NPM_TOKEN: ${{ secrets.NPM_TOKEN }}\n  PYPI_PASSWORD: ${{ secrets.PYPI_PASSWORD }}\n",
    )
    add(
        "k8s.yaml",
        "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: db\n        key: password\n",
    )
    # URLs without a real password.
    add(
        ".env",
        "DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test\nREDIS_URL=redis://localhost:6379/0\n",
    )
    add(
        ".env",
        "MONGO_URL=mongodb://localhost:27017/app\nBROKER_URL=amqp://guest:guest@localhost:5672//\n",
    )
    add("README.md", "Point `DATABASE_URL` at `postgres://user:password@localhost/db`.\n")
    add(".env", "DATABASE_URL=postgres://${DB_USER}:${DB_PASSWORD}@db/app\n")
    add(
        "docker-compose.yml",
        "    command: redis-server --requirepass foobared\n    url: redis://:foobared@redis:6379\n",
    )
    # Declarations, schemas, lookups in other languages, empty values.
    add(".env.example", "OPENAI_API_KEY=\nSTRIPE_SECRET_KEY=\nSESSION_SECRET=\nDB_PASSWORD=''\n")
    add(
        "settings.py",
        "SECRET_KEY = get_random_secret_key()\npassword = None\napi_key: str | None = None\n",
    )
    add("types.ts", "interface Config {\n  apiKey: string;\n  authToken?: string | null;\n}\n")
    add(
        "schema.json",
        '{"password": {"type": "string", "minLength": 12}, "token": {"$ref": "#/defs/token"}}\n',
    )
    add("values.yaml", "db:\n  password: &dbpw\n  replica_password: *dbpw\n")
    add(
        "workflow.yml",
        "with:\n  token: ${{ github.token }}\n  password: ${{ secrets.REGISTRY_PASSWORD }}\n",
    )
    add("main.tf", "password = var.db_password\nmaster_password = random_password.db.result\n")
    add("secret.yaml", "stringData:\n  password: {{ .Values.db.password | quote }}\n")
    add(
        "Config.java",
        'String password = System.getenv("PASSWORD");\nString apiKey = props.getProperty("api.key");\n',
    )
    add(
        "Startup.cs",
        'var apiKey = Configuration["ApiKey"];\nvar secret = Environment.GetEnvironmentVariable("SECRET");\n',
    )
    add("config.php", "$password = $_ENV['DB_PASSWORD'];\n$apiKey = getenv('API_KEY');\n")
    add("main.rs", 'let token = std::env::var("GITHUB_TOKEN")?;\n')
    add(
        "login.sh",
        'read -rs PASSWORD\nTOKEN="$(gh auth token)"\nexport AUTH_HEADER="Authorization: Bearer ${TOKEN}"\n',
    )
    add(
        "0002_user.py", '("password", models.CharField(max_length=128, verbose_name="password")),\n'
    )
    add(
        "en.json",
        '{"password_too_short": "Your password must contain at least 12 characters.", "api_key_label": "API key"}\n',
    )
    add(
        "form.html",
        '<label for="api-key">API key</label>\n<input id="api-key" name="api_key" type="password" autocomplete="off">\n',
    )
    add("Pipfile.lock", f'"hashes": [\n    "sha256:{sha64}"\n],\n', "pipfile hashes")
    add("Cargo.lock", f'[[package]]\nname = "ring"\nchecksum = "{sha64}"\n', "cargo checksum")
    add(
        "go.sum",
        f"golang.org/x/crypto v0.17.0 h1:{base64.b64encode(g.rnd.randbytes(32)).decode()}\n",
        "go.sum",
    )
    add("package.json", f'{{"name": "widget", "gitHead": "{sha40}", "private": true}}\n', "gitHead")
    add("hooks.py", f'webhook_id = "{uuid}"\nsecret_version_id = "{uuid}"\n', "uuid ids")
    add(
        "docs.md",
        "| `WIDGET_SECRET` | yes | at least 48 random characters, e.g. from `tcai secrets rotate` |\n",
    )
    add(
        "test_tokens.py",
        f'expired = make_token(secret="{g.s(ALNUM, 32)}")  # tcai: allow-secret\n',
        "fixture allowed",
    )
    # Plain code that happens to contain keywords.
    add("utils.py", "for key, value in sorted(kwargs.items(), key=lambda kv: kv[0]):\n    pass\n")
    add(
        "lexer.py",
        "tokens = tokenize(source)\nfor token in tokens:\n    if token.type == 'NAME':\n        pass\n",
    )
    # Shapes found while scanning real code for false positives.
    add(
        "providers.py",
        f'    "AWS::ApiGateway::ApiKey": "{g.s(HEX, 16)}",\n    "AWS::SecretsManager::Secret": "{g.s(HEX, 16)}",\n',
        "cloudformation type names",
    )
    add(
        "examples.json",
        f'{{"NextToken": "{g.b64url(g.rnd.randbytes(48))}", "nextPageToken": "{g.s(ALNUM, 40)}"}}\n',
        "pagination tokens",
    )
    add(
        "manifest.xml",
        f'<assemblyIdentity name="Microsoft.VC90.CRT" publicKeyToken="{g.s(HEX, 16)}"/>\n',
        "publicKeyToken",
    )
    add(
        "shell.py",
        "Token.Prompt: '#ansibrightgreen',\nTOKEN_COLOR = '#a1b2c3d4e5f60718'\n",
        "colors",
    )
    add("aws.py", "secret_keyword = r'(?:key|pwd|pw|password|pass|token)'\n", "regex value")
    add(
        "paginators.json",
        '{"output_token": "StreamDescription.Shards[-1].ShardId"}\n',
        "expression value",
    )
    add(
        "usage.rst",
        "    --token-validity-units AccessToken=minutes,IdToken=minutes,RefreshToken=days\n",
        "key=value lists",
    )
    add(
        "test_rds.py",
        'credentials = {"username": "admin", "password": "P@55w0rd!"}\n',
        "leet placeholder",
    )
    add("test_ivs.py", 'participant = {"token": "abcd1234defg5678"}\n', "two sequences")
    add(
        "meta.txt",
        "API_KEY = 'this-will-ordinarily-be-detected-by-a-plugin'\n",
        "sentence in dashes",
    )
    add(
        "author.py",
        '__author__ = "Ada Lovelace <ada@example.org>"\nauthorization_header = request.headers["Authorization"]\n',
    )
    return [Sample(f, t, None, 0, label) for f, t, label in texts]


@dataclass
class Score:
    true_positives: int = 0
    false_negatives: int = 0
    false_positives: int = 0

    @property
    def recall(self) -> float:
        return self.true_positives / max(1, self.true_positives + self.false_negatives)

    @property
    def precision(self) -> float:
        return self.true_positives / max(1, self.true_positives + self.false_positives)


def score_corpus(samples: list[Sample]) -> tuple[Score, list[str]]:
    score, problems = Score(), []
    for sample in samples:
        findings = scan_text(sample.text, sample.filename)
        if sample.rule is None:
            score.false_positives += len(findings)
            problems += [f"FP {sample.label}: {f.rule} line {f.line} {f.message}" for f in findings]
            continue
        hits = [f for f in findings if f.rule == sample.rule and f.line == sample.line]
        if hits:
            score.true_positives += 1
        else:
            score.false_negatives += 1
            problems.append(f"FN {sample.label}: got {[(f.rule, f.line) for f in findings]}")
        extra = len(findings) - min(1, len(hits))
        score.false_positives += extra
        if extra:
            problems.append(
                f"FP {sample.label}: {len(findings)} findings {[(f.rule, f.line) for f in findings]}"
            )
    return score, problems


@pytest.fixture(scope="module")
def corpus() -> tuple[list[Sample], list[Sample]]:
    g = Gen(20261127)
    return build_positives(g), build_negatives(g)


def test_corpus_recall_and_precision(corpus: tuple[list[Sample], list[Sample]]) -> None:
    positives, negatives = corpus
    score, problems = score_corpus(positives + negatives)
    print(
        f"\nsecret corpus: {len(positives)} positives, {len(negatives)} negatives, "
        f"{len(load_rules().rules)} rules -> recall {score.recall:.3f}, precision {score.precision:.3f} "
        f"(TP {score.true_positives}, FN {score.false_negatives}, FP {score.false_positives})"
    )
    for problem in problems:
        print("  " + problem)
    assert score.recall >= 0.95, problems
    assert score.precision >= 0.9, problems


def test_every_rule_is_exercised_and_found(corpus: tuple[list[Sample], list[Sample]]) -> None:
    positives, _ = corpus
    by_rule: dict[str, int] = {}
    for sample in positives:
        found = any(f.rule == sample.rule for f in scan_text(sample.text, sample.filename))
        by_rule[sample.rule or ""] = by_rule.get(sample.rule or "", 0) + int(found)
    assert set(by_rule) == set(rule_descriptions())
    assert all(count > 0 for count in by_rule.values()), by_rule


def test_prefilter_keywords_cover_every_positive(corpus: tuple[list[Sample], list[Sample]]) -> None:
    """The one cheap pass must select every line a rule can fire on."""
    rules = {rule.id: rule for rule in load_rules().rules}
    positives, _ = corpus
    for sample in positives:
        line = sample.text.splitlines()[sample.line - 1].lower()
        assert any(k in line for k in rules[sample.rule or ""].keywords), sample.label


def test_rules_file_is_well_formed() -> None:
    rules = load_rules().rules
    assert len({r.id for r in rules}) == len(rules) >= 30
    for rule in rules:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.id)
        assert rule.keywords and all(k == k.lower() for k in rule.keywords)
        assert rule.description
    assert rules[-1].id == "generic-secret" and rules[-1].pattern is None


# --------------------------------------------------------------------------- masking


def _secrets_of(positives: list[Sample]) -> list[tuple[Sample, str]]:
    """(sample, the secret's text) for single-line positives."""
    found = []
    for sample in positives:
        if sample.rule in {"private-key", "google-service-account"}:
            continue
        line = sample.text.splitlines()[sample.line - 1]
        value = re.split(r"[=:]\s*|\(|,", line.strip(), maxsplit=1)[-1].strip().strip("\"';,")
        found.append((sample, value))
    return found


def test_secret_never_appears_in_message_json_or_sarif(
    corpus: tuple[list[Sample], list[Sample]],
) -> None:
    positives, _ = corpus
    for sample, secret in _secrets_of(positives):
        findings = scan_text(sample.text, sample.filename)
        assert findings, sample.label
        report = GuardReport(findings=findings, files_scanned=1)
        rendered = json.dumps(report.as_dict()) + json.dumps(
            to_sarif(report, tool="tcai scan secrets", rules=rule_descriptions())
        )
        core = secret.rsplit("@", 1)[0].rsplit(":", 1)[-1] if "://" in secret else secret
        assert core[:8] not in rendered or len(core) < 8, sample.label
        for finding in findings:
            shown = MASKED.search(finding.message)
            assert shown, finding.message
            assert len(shown.group("shown")) <= 4
            assert len(shown.group("shown")) <= int(shown.group("length")) // 4


def test_mask_shows_prefix_and_length() -> None:
    key = "AKIA" + Gen(0).s("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    [finding] = scan_text(f"aws_access_key_id = {key}\n", "credentials")
    assert finding.message == "AWS access key ID: AKIA… (20 chars)"
    password = "Zq8!" + "mK2="
    [short] = scan_text(f'password = "{password}"\n', "app.py")
    assert short.message.endswith(": Zq… (8 chars)")


# --------------------------------------------------------------------------- allow comment


def test_allow_comment_on_the_line_or_the_line_before() -> None:
    g = Gen(1)
    token = "ghp_" + g.s(ALNUM, 36)
    assert len(scan_text(f'TOKEN = "{token}"\n', "a.py")) == 1
    assert scan_text(f'TOKEN = "{token}"  # tcai: allow-secret fixture\n', "a.py") == []
    assert (
        scan_text(f'# tcai: allow-secret (documented example)\nTOKEN = "{token}"\n', "a.py") == []
    )
    after = scan_text(f'TOKEN = "{token}"\n# tcai: allow-secret\n', "a.py")
    assert [f.line for f in after] == [1]
    two_above = scan_text(f'# tcai: allow-secret\n\nTOKEN = "{token}"\n', "a.py")
    assert [f.line for f in two_above] == [3]
    after_code = scan_text(f'A = "{token}"  # tcai: allow-secret\nB = "{token}"\n', "a.py")
    assert [f.line for f in after_code] == [2]
    for comment in (
        "// tcai: allow-secret",
        "<!-- tcai: allow-secret -->",
        "-- tcai: allow-secret",
    ):
        assert scan_text(f'{comment}\nTOKEN = "{token}"\n', "a.txt") == [], comment


# --------------------------------------------------------------------------- baseline


def _tree(tmp_path: Path, g: Gen) -> tuple[Path, list[str]]:
    root = tmp_path / "tree"
    (root / "app").mkdir(parents=True)
    secrets = [
        "sk_live_" + g.s(ALNUM, 24),
        "xoxb-" + g.digits(12) + "-" + g.digits(13) + "-" + g.s(ALNUM, 24),
    ]
    (root / "app" / "settings.py").write_text(f'STRIPE = "{secrets[0]}"\n')
    (root / ".env").write_text(f"SLACK_BOT_TOKEN={secrets[1]}\n")
    (root / "app" / "clean.py").write_text("print('hello')\n")
    return root, secrets


def test_baseline_round_trip(tmp_path: Path) -> None:
    g = Gen(2)
    root, secrets = _tree(tmp_path, g)
    first = scan_paths([root], root=root)
    assert sorted(f.rule for f in first.findings) == ["slack-token", "stripe-secret-key"]
    baseline = tmp_path / "secrets-baseline.json"
    write_baseline(baseline, first)
    stored = baseline.read_text()
    for secret in secrets:
        assert secret not in stored and secret[4:12] not in stored
    known = load_baseline(baseline)
    assert known == {f.fingerprint for f in first.findings}
    assert all(re.fullmatch(r"[0-9a-f]{64}", fp) for fp in known)

    again = scan_paths([root], root=root, baseline=known)
    assert again.findings == []
    assert any("2 known finding(s) suppressed" in note for note in again.notes)

    fresh = "ghp_" + g.s(ALNUM, 36)
    (root / "app" / "new.py").write_text(f'token = "{fresh}"\n')
    third = scan_paths([root], root=root, baseline=known)
    assert [(f.file, f.rule) for f in third.findings] == [("app/new.py", "github-pat")]


def test_fingerprint_depends_on_rule_file_and_secret_not_line(tmp_path: Path) -> None:
    g = Gen(3)
    key = "sk_live_" + g.s(ALNUM, 24)
    [a] = scan_text(f'KEY = "{key}"\n', "a.py")
    [b] = scan_text(f'\n\nKEY = "{key}"\n', "a.py")
    [c] = scan_text(f'KEY = "{key}"\n', "b.py")
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert key not in a.fingerprint


def test_bad_baseline_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "baseline.json"
    bad.write_text('{"fingerprints": ["sk_live_not_a_hash"]}')
    with pytest.raises(UsageError):
        load_baseline(bad)
    bad.write_text("not json")
    with pytest.raises(UsageError):
        load_baseline(bad)
    with pytest.raises(UsageError):
        load_baseline(tmp_path / "missing.json")


# --------------------------------------------------------------------------- the walk


def _secret_line(seed: int) -> tuple[str, str]:
    g = Gen(seed)
    key = "AKIA" + g.s("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    return key, f"aws_access_key_id = {key}\n"


def test_gitignore_is_respected_outside_and_inside_git(tmp_path: Path) -> None:
    _, line = _secret_line(4)
    for use_git in (False, True):
        root = tmp_path / f"repo-{use_git}"
        root.mkdir()
        (root / ".gitignore").write_text("ignored.env\nbuild/\n")
        (root / "ignored.env").write_text(line)
        (root / "build").mkdir()
        (root / "build" / "creds").write_text(line)
        (root / "kept.env").write_text(line)
        if use_git:
            subprocess.run(["git", "init", "-q", str(root)], check=True)
        report = scan_paths([root], root=root)
        assert [f.file for f in report.findings] == ["kept.env"], use_git


def test_binary_files_are_skipped(tmp_path: Path) -> None:
    _, line = _secret_line(5)
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02" + line.encode())
    report = scan_paths([tmp_path], root=tmp_path)
    assert report.findings == [] and report.files_scanned == 0
    assert "1 binary file(s) skipped" in report.notes


def test_a_50_mb_file_is_capped_with_a_note(tmp_path: Path) -> None:
    _, first = _secret_line(6)
    _, last = _secret_line(7)
    big = tmp_path / "huge.log"
    with big.open("wb") as handle:
        handle.write(first.encode() + b"log line without secrets\n" * 1000)
        handle.seek(50 * 1024 * 1024 - 200)  # sparse: instant, takes no disk
        handle.write(last.encode())
    assert big.stat().st_size > 9 * MAX_SCAN_BYTES
    report = scan_paths([tmp_path], root=tmp_path)
    assert [f.line for f in report.findings] == [1]
    assert "file huge.log: only the first 5 MB scanned" in report.notes


def test_non_utf8_bytes_do_not_crash(tmp_path: Path) -> None:
    key, line = _secret_line(8)
    (tmp_path / "latin1.cfg").write_bytes(
        b"caf\xe9 = cr\xe8me\n\xff\xfe\xfa\n"
        + line.encode()
        + b"\x80\x81 "
        + line.encode().rstrip()
        + b" \xc3\x28\n"
    )
    report = scan_paths([tmp_path], root=tmp_path)
    assert [f.line for f in report.findings] == [3, 4]
    assert all(key not in f.message for f in report.findings)


def test_unreadable_files_become_notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, line = _secret_line(9)
    (tmp_path / "locked.env").write_text(line)
    (tmp_path / "open.env").write_text(line)
    (tmp_path / "dir.env").mkdir()  # a directory named like a file
    os.mkfifo(tmp_path / "pipe.env")  # reading it would block: it must be skipped
    real_open = Path.open

    def guarded_open(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self.name == "locked.env":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", guarded_open)
    report = scan_paths([tmp_path], root=tmp_path)
    assert [f.file for f in report.findings] == ["open.env"]
    assert "locked.env: cannot read (Permission denied)" in report.notes


def test_symlink_loop_terminates(tmp_path: Path) -> None:
    _, line = _secret_line(10)
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "sub" / "self").symlink_to(root / "sub", target_is_directory=True)
    (root / "sub" / "creds.env").write_text(line)
    report = scan_paths([root], root=root)
    assert [f.file for f in report.findings] == ["sub/creds.env"]


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        scan_paths([tmp_path / "nope"], root=tmp_path)


# --------------------------------------------------------------------------- history


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_history_finds_a_secret_added_then_removed(tmp_path: Path) -> None:
    g = Gen(11)
    token = "glpat-" + g.s(URLSAFE, 20)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "app.py").write_text("print('hello')\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "one")
    (repo / "app.py").write_text(f"print('hello')\nGITLAB = '{token}'\nprint('bye')\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "leak")
    leak = _git(repo, "rev-parse", "HEAD")
    (repo / "app.py").write_text("print('hello')\nprint('bye')\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "remove the leak")

    assert scan_paths([repo], root=repo).findings == []
    report = scan_history(repo)
    assert [(f.file, f.line, f.rule) for f in report.findings] == [("app.py", 2, "gitlab-token")]
    assert leak[:12] in report.findings[0].message
    assert token not in json.dumps(report.as_dict())
    assert scan_history(repo, baseline={report.findings[0].fingerprint}).findings == []


def test_history_handles_odd_file_names_binaries_and_branches(tmp_path: Path) -> None:
    g = Gen(12)
    key = "sk_live_" + g.s(ALNUM, 24)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    odd = repo / "conf dir" / "ñ\tcreds.env"
    odd.parent.mkdir()
    odd.write_text(f"# stripe\nSTRIPE_KEY={key}\n")
    (repo / "blob.bin").write_bytes(b"\x00\x01" + key.encode())
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "odd names")
    _git(repo, "checkout", "-q", "-b", "side")
    (repo / "side.py").write_text(f'KEY = "{key}"  # tcai: allow-secret\nOTHER = "{key}"\n')
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "on a branch")
    _git(repo, "checkout", "-q", "-")
    report = scan_history(repo)
    found = sorted((f.file, f.line, f.rule) for f in report.findings)
    assert found == [
        ("conf dir/ñ\tcreds.env", 2, "stripe-secret-key"),
        ("side.py", 2, "stripe-secret-key"),
    ]
    assert "history: 2 commit(s) scanned" in report.notes


def test_history_needs_a_repository(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        scan_history(tmp_path)


# --------------------------------------------------------------------------- our own tree


def test_real_python_source_has_no_findings() -> None:
    """The standard library's top-level modules: real code full of keywords, no secrets."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    modules = sorted(stdlib.glob("*.py"))
    assert len(modules) > 100
    report = scan_paths(modules, root=stdlib)
    assert report.files_scanned == len(modules)
    assert report.findings == [], [f"{f.file}:{f.line} {f.rule}" for f in report.findings]


def test_our_repository_is_clean() -> None:
    report = scan_paths([REPO], root=REPO)
    assert report.files_scanned > 50
    assert report.findings == [], [f"{f.file}:{f.line} {f.rule}" for f in report.findings]
