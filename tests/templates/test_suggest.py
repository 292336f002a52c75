"""`tcai templates suggest`: whole words and phrases, ranked."""

from __future__ import annotations

import json

import pytest

from tcai.templates.files import load_template_files
from tcai.templates.policy import load_policy
from tcai.templates.suggest import suggest

CASES = [
    ("Sunset Diner", "restaurant"),
    ("car care", "auto"),
    ("skin care clinic", "med_spa"),
    ("Fade Factory barbershop", "barber"),
    ("Downtown dental clinic", "dental"),
    ("The Grand Inn", "hotel"),
    ("Paws & Claws dog grooming", "pet_grooming"),
    ("Gel nails and pedicures", "nails"),
    ("Hair salon with colorists", "salon"),
    ("Hope House sober living for men in recovery", "sober_living"),
    ("Smith & Jones, attorneys at law", "law_firm"),
    ("Peak roofing and gutters", "roofing"),
    ("CrossFit box and yoga studio", "gym"),
    ("Rustic barn wedding venue", "wedding"),
    ("Ink & Iron tattoo studio", "tattoo"),
    ("Realtor helping first-time buyers", "real_estate"),
    ("Handyman and plumbing repairs", "home_services"),
]


@pytest.fixture(scope="module")
def ranked_templates():
    policy = load_policy()
    return [(policy.display_order(t.key), t) for t in load_template_files()]


@pytest.mark.parametrize(("text", "key"), CASES)
def test_best_suggestion(ranked_templates, text: str, key: str) -> None:
    results = suggest(text, ranked_templates)
    assert results, text
    assert results[0].key == key, [(r.key, r.score, r.matched) for r in results]


@pytest.mark.parametrize(
    ("text", "not_key"),
    [
        ("Sunset Diner", "hotel"),  # "inn" is not in "dinner" or "diner"
        ("car care", "med_spa"),  # "care" alone is nobody's keyword
        ("Dinner and drinks", "hotel"),
        ("Careful carpentry", "auto"),  # "car" is not in "careful"
    ],
)
def test_no_substring_matches(ranked_templates, text: str, not_key: str) -> None:
    assert not_key not in {r.key for r in suggest(text, ranked_templates)}


def test_cli_suggest_and_no_match(cli, seeded) -> None:
    result = cli("templates", "suggest", "Sunset Diner", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["template_id"] == "restaurant_template"
    none = cli("templates", "suggest", "quantum flux capacitors")
    assert none.exit_code == 1
    assert "no template matches" in none.stderr


def test_cli_list_and_show(cli, seeded) -> None:
    items = json.loads(cli("templates", "list", "--json").stdout)
    assert [i["key"] for i in items] == [i.key for i in load_policy().industries]
    assert all({"template_id", "key", "name", "version", "is_active"} <= set(i) for i in items)
    shown = cli("templates", "show", "auto")
    assert shown.exit_code == 0, shown.output
    assert "auto_shop_template" in shown.stdout and "estimate" in shown.stdout
    by_id = json.loads(cli("templates", "show", "auto_shop_template", "--json").stdout)
    assert by_id["document"]["booking"]["mode"] == "internal"
    missing = cli("templates", "show", "x")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: no template 'x'; see tcai templates list"


def test_cli_suggest_refuses_empty_and_oversized_text(cli, seeded) -> None:
    for text in ("   ", "barber " * 400):
        result = cli("templates", "suggest", text)
        assert result.exit_code == 2
        assert "1 to 2000 characters" in result.stderr
