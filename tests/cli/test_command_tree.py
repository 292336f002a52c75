"""The command tree by noun (docs/cli.md, "The command tree"): the kill switch as `tcai
bots pause|resume`, its old spelling `tcai bot disable|enable` as hidden aliases, a
pointer from every near miss, and help pages that show what is required, list the keys
of `bots set` and carry no type label that says nothing."""

from __future__ import annotations

import json
import re

import pytest
from typer.core import TyperGroup

from tcai.bots.service import settable_keys, setting_rules
from tcai.cli import main


def one_line(text: str) -> str:
    """A Rich panel's text as one line: box edges dropped, wrapped lines joined."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text)).strip()


def listed_commands(help_page: str, section: str = "Commands") -> list[str]:
    return [
        line.strip("│ ").split()[0]
        for line in help_page.split(section)[1].splitlines()
        if line.startswith("│ ") and not line.startswith("│  ")
    ]


def command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the tree, hidden aliases included, as argv prefixes."""
    root = main.TcaiGroup(name="tcai")
    paths: list[tuple[str, ...]] = [()]
    for name in main.LAZY:
        command = root.load(name)
        paths.append((name,))
        if isinstance(command, TyperGroup):
            paths += [(name, sub) for sub in command.commands]
    return paths


def audit(cli, bot_id: str) -> list[dict]:
    result = cli("audit", "list", "--action", "bot.", "--json")
    assert result.exit_code == 0, result.output
    return [row for row in json.loads(result.stdout) if row["target"] == bot_id]


# ---- the kill switch ------------------------------------------------------------------


def test_pause_and_resume_switch_the_bot_and_are_audited(cli, barber: str) -> None:
    paused = cli("bots", "pause", barber, "--reason", "owner on holiday")
    assert paused.exit_code == 0, paused.output
    assert paused.stdout.strip() == f"✓ {barber} paused: owner on holiday"
    shown = json.loads(cli("bots", "show", barber, "--json").stdout)
    assert (shown["status"], shown["paused_reason"]) == ("paused", "owner on holiday")

    resumed = cli("bots", "resume", barber, "--json")
    assert resumed.exit_code == 0, resumed.output
    document = json.loads(resumed.stdout)
    assert (document["bot_id"], document["status"], document["paused_reason"]) == (
        barber,
        "active",
        None,
    )

    rows = audit(cli, barber)
    assert [row["action"] for row in rows] == ["bot.enable", "bot.disable"]  # newest first
    assert rows[1]["reason"] == "owner on holiday"
    assert all(row["actor"].startswith("cli") for row in rows)


def test_pause_needs_a_reason_and_a_known_bot(cli, barber: str) -> None:
    missing = cli("bots", "pause", barber)
    assert missing.exit_code == 2
    assert "Missing option '--reason'" in one_line(missing.stderr)
    blank = cli("bots", "pause", barber, "--reason", "   ")
    assert blank.exit_code == 2 and blank.stderr.startswith("error: say why: --reason")
    ghost = cli("bots", "pause", "ghost_main", "--reason", "x", "--json")
    assert ghost.exit_code == 1 and ghost.stdout == ""
    assert ghost.stderr.startswith("error: no bot 'ghost_main'")
    assert json.loads(cli("bots", "show", barber, "--json").stdout)["status"] == "active"
    assert audit(cli, barber) == []


@pytest.mark.parametrize(
    ("old", "new", "args", "status", "action"),
    [
        ("disable", "pause", ["--reason", "spam wave"], "paused", "bot.disable"),
        ("enable", "resume", [], "active", "bot.enable"),
    ],
)
def test_the_old_spelling_still_works_and_names_the_new_one(
    cli, barber: str, old: str, new: str, args: list[str], status: str, action: str
) -> None:
    if old == "enable":
        assert cli("bots", "pause", barber, "--reason", "before").exit_code == 0
    result = cli("bot", old, barber, *args, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == status  # stdout stays one document
    note = result.stderr.strip()
    assert len(note.splitlines()) == 1
    assert f"`tcai bot {old}` is deprecated" in note and f"use `tcai bots {new}`" in note
    assert audit(cli, barber)[0]["action"] == action


def test_the_aliases_are_hidden_but_keep_their_help(cli) -> None:
    root = cli("--help")
    assert "bots" in listed_commands(root.stdout)
    assert "bot" not in listed_commands(root.stdout)
    assert "Deprecated" not in root.stdout
    alias = cli("bot", "--help")
    assert alias.exit_code == 0
    assert listed_commands(alias.stdout) == ["disable", "enable"]
    assert "tcai bots pause" in one_line(alias.stdout)
    assert cli("bot", "disable", "x").exit_code == 2  # --reason is required there too
    assert listed_commands(cli("bots", "--help").stdout) == [
        "list",
        "show",
        "set",
        "pause",
        "resume",
        "check",
    ]


# ---- near misses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "pointer"),
    [
        (["bots", "disable", "fade-factory_main"], "`tcai bots pause`"),
        (["bots", "enable", "fade-factory_main"], "`tcai bots resume`"),
        (["bots", "stop", "x"], "`tcai bots pause`"),
        (["bots", "kill", "x"], "`tcai bots pause`"),
        (["bots", "start", "x"], "`tcai bots resume`"),
        (["bots", "ls"], "`tcai bots list`"),
        (["bots", "info", "x"], "`tcai bots show`"),
        (["bots", "edit", "x"], "`tcai bots set`"),
        (["bots", "paus", "x"], "`tcai bots pause`"),  # difflib
        (["clients", "rm", "x"], "`tcai clients delete`"),
        (["clients", "remove", "x"], "`tcai clients delete`"),
        (["clients", "disable", "x"], "`tcai clients suspend`"),
        (["users", "ls"], "`tcai users list`"),
        (["templates", "info", "barber"], "`tcai templates show`"),
        (["leads", "lst"], "`tcai leads list`"),  # difflib
        (["pause", "x"], "`tcai bots pause`"),
        (["disable", "x"], "`tcai bots pause`"),
        (["botz"], "`tcai bots`"),  # not the hidden alias `bot`
        (["client", "list"], "`tcai clients`"),
        (["version"], "`tcai --version`"),
    ],
)
def test_a_near_miss_points_at_the_command_meant(cli, argv: list[str], pointer: str) -> None:
    result = cli(*argv)
    assert result.exit_code == 2
    assert result.stdout == "" and "Traceback" not in result.output
    message = one_line(result.stderr)
    typed = argv[1] if argv[0] in main.LAZY else argv[0]
    assert f"No such command '{typed}'." in message
    assert f"Did you mean {pointer}?" in message


def test_a_word_nothing_is_close_to_gets_no_guess(cli) -> None:
    result = cli("bots", "frobnicate")
    assert result.exit_code == 2
    assert "No such command 'frobnicate'." in one_line(result.stderr)
    assert "Did you mean" not in result.stderr


def test_every_pointer_names_a_real_command(cli) -> None:
    """The tables may only point at commands that exist (and are listed)."""
    paths = {" ".join(path) for path in command_paths()}
    hidden = {"bot", "bot disable", "bot enable"}
    for word, target in main.ROOT_POINTERS.items():
        assert target in paths - hidden or target in ("--version", "--help"), word
        assert word not in main.LAZY, f"{word} is a command; the pointer would never show"
    names = {path[-1] for path in command_paths() if path}
    for word, meant in main.SYNONYMS.items():
        assert all(name in names for name in meant), word


# ---- help pages -----------------------------------------------------------------------


def test_required_options_show_as_required(cli) -> None:
    page = cli("bots", "pause", "--help")
    assert page.exit_code == 0
    reason = next(line for line in page.stdout.splitlines() if "--reason" in line)
    assert reason.startswith("│ *") and "[required]" in reason
    json_line = next(line for line in page.stdout.splitlines() if "--json" in line)
    assert "*" not in json_line and "[required]" not in json_line
    workspace = next(
        line for line in cli("leads", "list", "-h").stdout.splitlines() if "--workspace" in line
    )
    assert workspace.startswith("│ *") and "[required]" in workspace


def test_bots_set_help_lists_every_key_with_its_rule(cli) -> None:
    page = cli("bots", "set", "--help")
    assert page.exit_code == 0, page.output
    keys_panel = page.stdout.split("Keys (KEY=VALUE")[1]
    rows = listed_commands("Keys" + keys_panel, section="Keys")
    assert rows == settable_keys()
    text = one_line(keys_panel)
    for key, rule in setting_rules().items():
        assert f"{key} {rule}" in text, key
    # The choices come from the config model, not from a second list.
    assert "one of bottom-right, bottom-left" in text
    assert "one of prepend, replace" in text


def test_no_help_page_carries_a_type_label_that_says_nothing(cli) -> None:
    paths = command_paths()
    assert len(paths) > 50  # the whole tree, not a sample
    for path in paths:
        page = cli(*path, "--help")
        assert page.exit_code == 0, (path, page.output)
        for label in ("<bool>", "<str>", "<list[str]>"):
            assert label not in page.stdout, (path, label)
    # Labels that tell something stay.
    assert "<path>" in cli("bots", "set", "--help").stdout
    assert "<int range> [1<=x<=64]" in cli("serve", "--help").stdout
