"""Start-up: the root imports nothing heavy; each command imports what it needs.

docs/cli.md, "Start-up: what a command imports". The root (`tcai.cli.main`) knows every
top-level command and group by name and help text (`LAZY`) and imports a command's module
only when it runs or shows its own help. These tests check what a fresh interpreter has
loaded, never how long it took, and that laziness drops no command and no help text.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.core import TyperGroup

from tcai import __version__
from tcai.cli import main

# Never loaded by `import tcai.cli.main`, `tcai --version` or `tcai --help`.
HEAVY = (
    "openai",
    "aiohttp",
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "phonenumbers",
    "jinja2",
    "pydantic_settings",
    "pydantic",
    "yaml",
)
# What the root imports of ours: no command module, no core module.
ROOT_MODULES = {
    "tcai",
    "tcai.errors",
    "tcai.cli",
    "tcai.cli.main",
    "tcai.cli.context",
    "tcai.cli.output",
}

# The top level, in the order `tcai --help` lists it (the README's Commands table).
COMMANDS = [
    "init",
    "demo",
    "serve",
    "health",
    "embed",
    "preview-link",
    "chat",
    "check",
    "doctor",
    "bot",
    "cache",
    "clients",
    "bots",
    "config",
    "db",
    "templates",
    "secrets",
    "leads",
    "conversations",
    "audit",
    "logs",
    "users",
    "outbox",
    "privacy",
    "retention",
    "scan",
    "guard",
    "llm",
    "canary",
    "knowledge",
]
GROUPS = [name for name in COMMANDS if main.LAZY[name].group]

RUN = """
import json, sys
from tcai.cli.main import app
out, runs = sys.argv[1], json.loads(sys.argv[2])
codes = []
for args in runs:
    try:
        app(args)
    except SystemExit as exc:
        codes.append(exc.code)
with open(out, "w", encoding="utf-8") as handle:
    json.dump({"modules": sorted(sys.modules), "codes": codes}, handle)
"""


def fresh(tmp_path: Path, *runs: list[str]) -> tuple[set[str], list[object], str]:
    """A fresh interpreter imports the CLI and runs `tcai ARGS` for each of `runs`: the
    modules it then holds, the exit codes and its stdout."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(out), json.dumps(list(runs))],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(out.read_text(encoding="utf-8"))
    return set(report["modules"]), report["codes"], done.stdout


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted({m for m in modules if m.split(".")[0] in names})


def test_importing_the_cli_loads_nothing_heavy() -> None:
    code = "import json, sys, tcai.cli.main; print(json.dumps(sorted(m for m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(json.loads(done.stdout))
    assert loaded(modules, (*HEAVY, "rich")) == []
    assert {m for m in modules if m.startswith("tcai")} == ROOT_MODULES


def test_version_loads_neither_commands_nor_rich(tmp_path: Path) -> None:
    modules, codes, stdout = fresh(tmp_path, ["--version"])
    assert codes == [0]
    assert stdout.strip() == f"tcai {__version__}"
    assert loaded(modules, (*HEAVY, "rich")) == []
    assert {m for m in modules if m.startswith("tcai")} == ROOT_MODULES


@pytest.mark.parametrize("args", [["--help"], ["-h"], []])
def test_the_root_help_loads_no_command_module(tmp_path: Path, args: list[str]) -> None:
    modules, _codes, stdout = fresh(tmp_path, args)
    assert "Commands" in stdout
    assert loaded(modules, HEAVY) == []
    assert {m for m in modules if m.startswith("tcai")} == ROOT_MODULES


def test_every_group_and_command_help_loads_no_core_module(tmp_path: Path) -> None:
    """Loading every command module (as each one's --help does) pulls in none of the ORM,
    the settings, the LLM SDK or the web stack: those load inside the commands."""
    runs = [[name, "--help"] for name in COMMANDS]
    # Not `bots set --help`: it lists the settable keys from the core's table of setters.
    runs += [["bots", "pause", "--help"], ["bot", "disable", "--help"], ["scan", "secrets", "-h"]]
    modules, codes, _stdout = fresh(tmp_path, *runs)
    assert codes == [0] * len(runs)
    assert loaded(modules, tuple(h for h in HEAVY if h != "pydantic")) == []
    ours = {m for m in modules if m.startswith("tcai")}
    assert all(m in ROOT_MODULES or m.startswith("tcai.cli.") for m in ours), sorted(ours)


def test_the_help_lists_every_command_in_order(cli) -> None:
    assert list(main.LAZY) == COMMANDS
    result = cli("--help")
    assert result.exit_code == 0
    listed = [
        line.strip("│ ").split()[0]
        for line in result.stdout.split("Commands")[1].splitlines()
        if line.startswith("│ ") and not line.startswith("│  ")
    ]
    assert listed == [name for name in COMMANDS if not main.LAZY[name].hidden]
    for name in listed:
        first_words = " ".join(main.LAZY[name].help.split()[:3])
        assert first_words in result.stdout, name


def test_each_stand_in_matches_its_real_command() -> None:
    """What `tcai --help` shows before a module loads is what the module itself says."""
    group = main.TcaiGroup(name="tcai")
    for name in COMMANDS:
        stand_in = group.commands[name]
        real = group.load(name)
        assert isinstance(real, TyperGroup) == main.LAZY[name].group, name
        assert (stand_in.name, stand_in.help, stand_in.short_help) == (
            real.name,
            real.help,
            real.short_help,
        ), f"{name}: the help in tcai/cli/main.py LAZY differs from its module's"
        assert (stand_in.hidden, stand_in.deprecated) == (real.hidden, real.deprecated), name


@pytest.mark.parametrize("group", GROUPS)
def test_a_lazily_loaded_group_shows_its_help(cli, group: str) -> None:
    result = cli(group, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: tcai {group} [OPTIONS] COMMAND [ARGS]..." in result.stdout
    assert " ".join(main.LAZY[group].help.split()[:3]) in result.stdout
    bare = cli(group)  # no_args_is_help: the same help, exit 2
    assert bare.exit_code == 2 and "Commands" in bare.stdout


def test_a_lazily_loaded_command_shows_its_options(cli) -> None:
    result = cli("bot", "disable", "--help")
    assert result.exit_code == 0
    assert "Usage: tcai bot disable [OPTIONS] {bot_id}" in result.stdout
    assert "--reason" in result.stdout and "--json" in result.stdout
    result = cli("init", "-h")
    assert result.exit_code == 0 and "--json" in result.stdout


def test_a_mistyped_command_still_gets_a_suggestion(cli) -> None:
    result = cli("botz")
    assert result.exit_code == 2
    assert "Did you mean `tcai bots`?" in result.stderr  # not the hidden alias `bot`


def test_the_error_boundary_covers_loading_and_lazy_groups(
    cli, migrated, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = cli("bots", "pause", "no_such_bot", "--reason", "x")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: ") and "Traceback" not in missing.output
    broken = main.Lazy("tcai.cli.no_such_module", "app", "Broken.", group=True)
    monkeypatch.setitem(main.LAZY, "llm", broken)
    result = cli("llm", "check")
    assert result.exit_code == 1
    assert "internal error: ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.output
