"""Shell completion (docs/cli.md, "Shell completion").

Every test runs `tcai` as a shell does on Tab: a separate process with `_TCAI_COMPLETE`
and the shell's own variables set (bash: COMP_WORDS/COMP_CWORD; zsh and fish:
_TYPER_COMPLETE_ARGS), through a `tcai` script on disk. Candidates from the database come
from the test database of this run's engine (`migrated`/`barber` fixtures).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tcai.cli import main
from tests.conftest import Database, provision

TIMEOUT = 60  # a hang guard, not a measurement: a Tab that hangs fails here


@pytest.fixture
def tcai(tmp_path: Path) -> Path:
    """A `tcai` script as pip installs one, in its own folder (put on PATH for bash)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "tcai"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom tcai.cli.main import main\nsys.exit(main())\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


def run(
    tcai: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tcai), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )


def protocol(shell: str, line: str) -> dict[str, str]:
    """The variables each shell's script sets when the user presses Tab after `line`."""
    if shell == "bash":
        words = line.split()
        cword = len(words) if line.endswith(" ") else len(words) - 1
        return {"_TCAI_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(cword)}
    env = {"_TCAI_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": line}
    if shell == "fish":
        env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    return env


def complete(
    tcai: Path,
    line: str,
    shell: str = "bash",
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """What `tcai` prints for a Tab after `line`; it must exit 0 and say nothing else."""
    done = run(tcai, env={**protocol(shell, line), **(env or {})}, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    return done.stdout


def values(bash_output: str) -> list[str]:
    return bash_output.split()


def visible_commands() -> list[str]:
    group = main.TcaiGroup(name="tcai")
    return [name for name, command in group.commands.items() if not command.hidden]


# ---- the scripts the shells load --------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "marks"),
    [
        (
            "bash",
            [
                "_tcai_completion() {",
                "_TCAI_COMPLETE=complete_bash $1",
                "complete -o default -F _tcai_completion tcai",
            ],
        ),
        (
            "zsh",
            [
                "#compdef tcai",
                "_tcai_completion() {",
                "_TCAI_COMPLETE=complete_zsh tcai",
                "compdef _tcai_completion tcai",
            ],
        ),
        (
            "fish",
            [
                "complete --command tcai",
                "_TCAI_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=get-args",
                "_TCAI_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=is-args",
            ],
        ),
    ],
)
def test_each_shell_gets_its_script(tcai: Path, shell: str, marks: list[str]) -> None:
    done = run(tcai, env={"_TCAI_COMPLETE": f"source_{shell}"})
    assert done.returncode == 0, done.stderr
    for mark in marks:
        assert mark in done.stdout, (shell, mark, done.stdout)
    # --show-completion prints the same script (the shell named, as in a container
    # where the running shell cannot be detected).
    shown = run(
        tcai,
        "--show-completion",
        shell,
        env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == done.stdout.strip()


@pytest.mark.parametrize(
    ("shell", "where", "mark"),
    [
        ("bash", ".bash_completions/tcai.sh", "complete -o default -F _tcai_completion tcai"),
        ("zsh", ".zfunc/_tcai", "compdef _tcai_completion tcai"),
        ("fish", ".config/fish/completions/tcai.fish", "complete --command tcai"),
    ],
)
def test_install_completion_puts_the_script_where_the_shell_reads_it(
    tcai: Path, tmp_path: Path, shell: str, where: str, mark: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = run(
        tcai,
        "--install-completion",
        shell,
        env={"HOME": str(home), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert f"{shell} completion installed in {home / where}" in done.stdout
    assert mark in (home / where).read_text(encoding="utf-8")


def test_install_completion_detects_bash_and_completes_in_it(tcai: Path, tmp_path: Path) -> None:
    """The whole path in a real bash: `tcai --install-completion` run from bash finds
    bash, and the installed script's function fills COMPREPLY."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": f"{tcai.parent}{os.pathsep}{os.environ['PATH']}"}
    env = {**os.environ, **env}
    env.pop("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", None)
    bash = "/bin/bash" if Path("/bin/bash").exists() else "bash"
    installed = subprocess.run(
        [bash, "--norc", "-c", "tcai --install-completion; true"],  # `; true`: bash stays
        capture_output=True,  # the parent, as in a terminal
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert "bash completion installed in" in installed.stdout, installed.stderr
    script = home / ".bash_completions" / "tcai.sh"
    assert f"source '{script}'" in (home / ".bashrc").read_text(encoding="utf-8")
    used = subprocess.run(
        [
            bash,
            "--norc",
            "-c",
            f"source '{script}'; COMP_WORDS=(tcai cli); COMP_CWORD=1; _tcai_completion tcai; "
            'printf "%s\\n" "${COMPREPLY[@]}"',
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert used.stdout.split() == ["clients"], used.stderr


# ---- commands, groups and options --------------------------------------------------------


def test_bash_completes_every_command_and_group(tcai: Path) -> None:
    assert values(complete(tcai, "tcai ")) == visible_commands()
    assert values(complete(tcai, "tcai bo")) == [c for c in visible_commands() if c[:2] == "bo"]
    assert values(complete(tcai, "tcai te")) == ["templates"]
    assert values(complete(tcai, "tcai nothing-like-this")) == []


def test_bash_completes_subcommands_and_options(tcai: Path) -> None:
    assert "show" in values(complete(tcai, "tcai bots "))
    assert values(complete(tcai, "tcai clients su")) == ["suspend"]
    assert values(complete(tcai, "tcai db up")) == ["upgrade"]
    options = values(complete(tcai, "tcai bots show --"))
    assert "--json" in options and "--help" in options
    root = values(complete(tcai, "tcai --"))
    assert {"--env-file", "--version", "--install-completion", "--show-completion"} <= set(root)


def test_zsh_completes_with_descriptions(tcai: Path) -> None:
    out = complete(tcai, "tcai bots ", "zsh")
    assert out.startswith("_arguments '*: :((")
    assert '"show":"Show a bot' in out
    top = complete(tcai, "tcai tem", "zsh")
    assert '"templates":"Industry templates' in top


def test_fish_completes_with_descriptions(tcai: Path) -> None:
    lines = complete(tcai, "tcai bots s", "fish").splitlines()
    assert [line.split("\t")[0] for line in lines] == ["show", "set"]
    assert lines[0].startswith("show\tShow a bot")
    cache, canary = complete(tcai, "tcai ca", "fish").splitlines()
    assert cache == "cache\tDaemon caches."
    assert canary.startswith("canary\tCanary conversations")


LIST_ONLY = """
import json, sys
from tcai.cli.main import app
try:
    app([], prog_name="tcai")
except SystemExit:
    pass
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    json.dump(sorted(sys.modules), handle)
"""


def test_listing_commands_loads_no_command_module(tmp_path: Path) -> None:
    """`tcai <Tab>` names the commands from the root's table (as `tcai --help` does); it
    imports no command module and nothing of the database layer."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", LIST_ONLY, str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, **protocol("bash", "tcai ")},
        timeout=TIMEOUT,
        check=True,
    )
    assert done.stdout.split() == visible_commands()
    modules = json.loads(out.read_text(encoding="utf-8"))
    assert [m for m in modules if m.startswith("tcai.cli.") and m.endswith("_cmd")] == []
    assert "tcai.cli.complete" not in modules
    assert [m for m in modules if m.split(".")[0] in ("sqlalchemy", "sqlmodel")] == []


# ---- candidates from the database ----------------------------------------------------------


BOT_LINES = [
    "tcai bots show ",
    "tcai bots show fade",
    "tcai bots set ",
    "tcai bots check f",
    "tcai bots pause ",
    "tcai bot disable ",
    "tcai chat ",
    "tcai embed ",
    "tcai preview-link ",
    "tcai canary run ",
    "tcai knowledge import ",
    "tcai doctor ",
    "tcai conversations list -w fade-factory --bot ",
]


def test_a_bot_argument_completes_from_the_database(tcai: Path, barber: str) -> None:
    for line in BOT_LINES:
        assert values(complete(tcai, line)) == [barber], line


def test_bot_ids_come_with_a_description_and_match_the_prefix(
    tcai: Path, barber: str, seeded: Database
) -> None:
    dashed = provision(seeded, slug="other-shop", name="Other Shop")
    underscored = provision(seeded, slug="other_shop", name="Other Shop Two")
    every = {barber, dashed, underscored}
    assert set(values(complete(tcai, "tcai bots show "))) == every
    assert set(values(complete(tcai, "tcai bots show o"))) == {dashed, underscored}
    assert values(complete(tcai, "tcai bots show zz")) == []
    # `_` is itself here, not SQL's any-one-character: "other_" is not "other-".
    assert values(complete(tcai, "tcai bots show other_")) == [underscored]
    zsh = complete(tcai, "tcai bots show fa", "zsh")
    assert f'"{barber}":"Fade Factory (fade-factory, active)"' in zsh
    fish = complete(tcai, "tcai chat other-", "fish")
    assert fish.splitlines() == [f"{dashed}\tOther Shop (other-shop, active)"]


CLIENT_LINES = [
    "tcai clients show ",
    "tcai clients suspend fa",
    "tcai leads list -w ",
    "tcai leads export --workspace ",
    "tcai conversations list --workspace f",
    "tcai audit list -w ",
    "tcai logs system --workspace ",
    "tcai users create --workspace ",
    "tcai users invite -w ",
    "tcai bots list --client ",
]


def test_a_client_id_completes_from_the_database(tcai: Path, barber: str) -> None:
    for line in CLIENT_LINES:
        assert values(complete(tcai, line)) == ["fade-factory"], line


def test_template_ids_complete_from_the_database(tcai: Path, seeded: Database) -> None:
    assert values(complete(tcai, "tcai templates show barb")) == ["barber", "barber_template"]
    created = values(complete(tcai, "tcai clients create --template "))
    assert "barber" in created and "barber_template" in created
    assert values(complete(tcai, "tcai templates show nothing")) == []


def test_the_env_file_typed_before_the_command_is_read(
    tcai: Path, barber: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = os.environ["DATABASE_URL"]
    monkeypatch.delenv("DATABASE_URL")
    (tmp_path / "other.env").write_text(f"DATABASE_URL={url}\n", encoding="utf-8")
    assert values(complete(tcai, f"tcai --env-file {tmp_path / 'other.env'} bots show ")) == [
        barber
    ]
    # Without it, the default database (./tcai.db) is not there: nothing, and not made.
    assert values(complete(tcai, "tcai bots show ")) == []
    assert not (Path.cwd() / "tcai.db").exists()


# ---- failures: nothing offered, nothing printed, nothing created -------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never says a word: a PostgreSQL
    server that hangs (without a connect timeout, a Tab would wait forever)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("shell", "server"),
    [("bash", "silent"), ("bash", "closed"), ("zsh", "silent"), ("fish", "closed")],
)
def test_an_unreachable_database_offers_nothing(
    tcai: Path, silent_server: int, shell: str, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = silent_server if server == "silent" else closed_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://tcai@127.0.0.1:{port}/tcai")
    out = complete(tcai, "tcai bots show ", shell)
    assert out.strip() in ("", "_files"), out  # zsh falls back to file names
    # The commands still complete: only the database's part is missing.
    assert "show" in complete(tcai, "tcai bots s", shell)


@pytest.mark.parametrize(
    "setting",
    [
        "not-a-url",  # the configuration is invalid
        "sqlite:///{tmp}/no/such/folder/tcai.db",  # the folder is missing
        "sqlite:///{tmp}/empty.db",  # a file that is no tcai database (no tables)
    ],
)
def test_a_broken_configuration_offers_nothing(
    tcai: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    (tmp_path / "empty.db").write_bytes(b"")
    monkeypatch.setenv("DATABASE_URL", setting.format(tmp=tmp_path))
    assert values(complete(tcai, "tcai bots show ")) == []
    assert values(complete(tcai, "tcai clients show ")) == []
    assert not (tmp_path / "no").exists()


def test_completion_never_creates_a_database(tcai: Path, tmp_path: Path) -> None:
    """In an empty folder with no configuration (DATABASE_URL defaults to ./tcai.db),
    and with DATABASE_URL naming a missing file: no candidates and no file."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    for line in ("tcai bots show ", "tcai clients show ", "tcai templates show "):
        done = subprocess.run(
            [str(tcai)],
            capture_output=True,
            text=True,
            env={**env, **protocol("bash", line)},
            cwd=empty,
            timeout=TIMEOUT,
            check=False,
        )
        assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "", "")
    missing = tmp_path / "elsewhere.db"
    out = complete(tcai, "tcai bots show ", env={"DATABASE_URL": f"sqlite:///{missing}"})
    assert values(out) == []
    assert sorted(p.name for p in empty.iterdir()) == []
    assert not missing.exists()
