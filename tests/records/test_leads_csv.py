"""Leads as CSV: the formula guard for text, phones a spreadsheet and a CRM read as text
without an apostrophe, and `--raw` for programs (docs/data-model.md, "Leads as CSV")."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest
from sqlmodel import Session, select

from tcai.db.models import Lead
from tcai.records.leads import EXPORT_COLUMNS, export_leads_csv, phone_cell, to_csv

SOFFICE = shutil.which("soffice")


@pytest.mark.parametrize(
    ("stored", "written"),
    [
        ("+17725550142", "+1 772-555-0142"),
        ("+442079460958", "+44 20 7946 0958"),
        ("+33123456789", "+33 1 23 45 67 89"),
        ("+5511987654321", "+55 11 98765-4321"),
        # Not a possible number, or not a number at all: the formula guard as for any text.
        ("+123", "'+123"),
        ("=1+2", "'=1+2"),
        ("+1 772 555 0142+cmd|' /C calc'!A0", "'+1 772 555 0142+cmd|' /C calc'!A0"),
        ("-772-555-0142", "'-772-555-0142"),
        ("772-555-0142", "772-555-0142"),
    ],
)
def test_phone_cell(stored: str, written: str) -> None:
    assert phone_cell(stored) == written


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_to_csv_guards_text_groups_phones_and_raw_writes_what_is_stored() -> None:
    lead = dict.fromkeys(EXPORT_COLUMNS)
    lead.update(
        lead_id=7,
        name='=HYPERLINK("http://evil.example.net","x")',
        phone="+17725550142",
        email="+cmd@shopmail.com",
        service_requested="@SUM(1+1)",
    )
    [guarded] = _rows(to_csv([lead]))
    assert guarded["phone"] == "+1 772-555-0142"
    assert guarded["name"].startswith("'=HYPERLINK")
    assert guarded["email"] == "'+cmd@shopmail.com"
    assert guarded["service_requested"] == "'@SUM(1+1)"
    assert guarded["consent_at"] == ""
    [raw] = _rows(to_csv([lead], raw=True))
    assert raw["phone"] == "+17725550142"
    assert raw["name"] == lead["name"] and raw["email"] == "+cmd@shopmail.com"
    assert raw["consent_at"] == "" and raw["lead_id"] == "7"


async def _two_leads(facts_chat) -> None:
    await facts_chat.say("My name is Ana, 772-555-0142")
    await facts_chat.say("I'm Bo, +44 20 7946 0958")
    engine = facts_chat.database.engine()
    with Session(engine) as session:
        lead = session.exec(select(Lead).where(Lead.phone == "+17725550142")).one()
        lead.name = "=cmd|' /C calc'!A0"
        session.add(lead)
        session.commit()
    engine.dispose()


async def test_leads_export_and_its_raw_mode(cli, facts_chat, barber) -> None:
    await _two_leads(facts_chat)
    people = cli("leads", "export", "--workspace", "fade-factory")
    assert people.exit_code == 0, people.output
    by_phone = {r["phone"]: r for r in _rows(people.stdout)}
    assert set(by_phone) == {"+1 772-555-0142", "+44 20 7946 0958"}
    assert by_phone["+1 772-555-0142"]["name"] == "'=cmd|' /C calc'!A0"
    raw = cli("leads", "export", "--workspace", "fade-factory", "--raw")
    assert raw.exit_code == 0, raw.output
    by_phone = {r["phone"]: r for r in _rows(raw.stdout)}
    assert set(by_phone) == {"+17725550142", "+442079460958"}
    assert by_phone["+17725550142"]["name"] == "=cmd|' /C calc'!A0"
    # JSON is always the values as stored; --raw changes nothing there.
    as_json = cli("leads", "export", "--workspace", "fade-factory", "--format", "json", "--raw")
    assert as_json.exit_code == 0 and '"+17725550142"' in as_json.stdout


async def test_the_portal_export_function_writes_phones_as_text(facts_chat, barber) -> None:
    """The portal's CSV (`export_leads_csv`) is the same `to_csv`, never raw by default."""
    await _two_leads(facts_chat)
    engine = facts_chat.database.engine()
    try:
        with Session(engine) as session:
            workspace_id = session.exec(select(Lead.workspace_id)).first()
        assert workspace_id is not None
        text = export_leads_csv(engine, workspace_id, actor="test")
    finally:
        engine.dispose()
    phones = {r["phone"] for r in _rows(text)}
    assert phones == {"+1 772-555-0142", "+44 20 7946 0958"}
    assert "'=cmd" in text


def _calc_cells(csv_path: Path, out: Path) -> dict[str, tuple[str, str]]:
    """How LibreOffice Calc reads each cell of the CSV's phone and name columns: the
    cell's type (string, float) and its text, from the flat ODS it converts to."""
    subprocess.run(
        [SOFFICE, "--headless", "--convert-to", "fods", "--outdir", str(out), str(csv_path)],
        check=True,
        capture_output=True,
        timeout=120,
        env={"HOME": str(out), "PATH": "/usr/bin:/bin"},
    )
    table = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
    office = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    tree = ElementTree.parse(out / (csv_path.stem + ".fods"))
    cells: dict[str, tuple[str, str]] = {}
    for row in list(tree.iter(f"{{{table}}}table-row"))[1:]:
        values: list[tuple[str, str]] = []
        for cell in row.iter(f"{{{table}}}table-cell"):
            repeated = int(cell.get(f"{{{table}}}number-columns-repeated", "1"))
            text = "".join(cell.itertext()).strip()
            values += [(cell.get(f"{{{office}}}value-type", ""), text)] * repeated
        for column in ("phone", "name"):
            kind, text = values[EXPORT_COLUMNS.index(column)]
            cells[text] = (kind, text)
    return cells


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice is not installed (libreoffice-calc)")
def test_libreoffice_reads_the_phones_as_text_and_raw_e164_as_a_number(tmp_path) -> None:
    lead = dict.fromkeys(EXPORT_COLUMNS)
    lead.update(lead_id=1, name="=1+1", phone="+17725550142")
    other = {**lead, "lead_id": 2, "name": "Bo", "phone": "+442079460958"}
    people, raw = tmp_path / "people.csv", tmp_path / "raw.csv"
    people.write_text(to_csv([lead, other]), encoding="utf-8")
    raw.write_text(to_csv([lead, other], raw=True), encoding="utf-8")
    read = _calc_cells(people, tmp_path)
    assert read["+1 772-555-0142"] == ("string", "+1 772-555-0142")
    assert read["+44 20 7946 0958"] == ("string", "+44 20 7946 0958")
    assert read["'=1+1"] == ("string", "'=1+1"), "the guard keeps a formula from running"
    as_stored = _calc_cells(raw, tmp_path)
    # What the grouping avoids: bare E.164 becomes a number, its "+" gone; the raw
    # file's formula runs. Such a file is for programs, never a spreadsheet.
    assert as_stored["17725550142"] == ("float", "17725550142")
    assert as_stored["2"] == ("float", "2")
