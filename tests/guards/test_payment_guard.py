"""The payment guard finds payment code, UI and dependencies, and nothing else.

Fixture lines that the guard itself would flag when it scans this repository carry the
allow comment with a reason, exactly as any other code would; the marker used in the
allow-comment tests is built at run time so that it waives nothing here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tcai.errors import UsageError
from tcai.guards import payments
from tcai.guards.common import to_sarif
from tcai.guards.payments import (
    build_rule_book,
    guard_paths,
    guard_text,
    load_rule_book,
    rule_descriptions,
)
from tests.helpers import REPO

ALLOW = "tcai: allow-" + "payment"
POLICY = "tcai never processes payments — link to the business's booking page instead"

PROVIDERS = {
    "Stripe",
    "PayPal",
    "Braintree",
    "Square",
    "Adyen",
    "Mollie",
    "Razorpay",
    "Authorize.net",
    "Checkout.com",
    "Klarna",
    "Paddle",
    "Lemon Squeezy",
    "Worldpay",
    "2Checkout (Verifone)",
    "Paystack",
    "Flutterwave",
    "GoCardless",
}


def found(text: str, filename: str) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in guard_text(text, filename)]


# --- positives: (file name, text, rule, line) ------------------------------------------------

PYTHON = [
    ("app.py", "import stripe\n", "stripe-python-import", 1),
    ("app.py", "import os\nfrom stripe import PaymentIntent\n", "stripe-python-import", 2),
    ("app.py", "import stripe.error as errors\n", "stripe-python-import", 1),
    (
        "app.py",
        "import stripe\n\nintent = stripe.PaymentIntent.create(amount=500, currency='usd')\n",
        "stripe-python-call",
        3,
    ),
    (
        "app.py",
        "from stripe import checkout\nsession = checkout.Session.create(mode='payment')\n",
        "stripe-python-call",
        2,
    ),
    ("app.py", "import stripe as s\ns.Charge.create(amount=1)\n", "stripe-python-call", 2),
    (
        "app.py",
        "import importlib\nsdk = importlib.import_module('stripe')\n",
        "stripe-python-import",
        2,
    ),
    ("app.py", "sdk = __import__('braintree')\n", "braintree-python-import", 1),
    (
        "app.py",
        "result = gateway.transaction.sale({'amount': '1.00'})\n",
        "braintree-python-call",
        1,
    ),
    ("app.py", "import paypalrestsdk\n", "paypal-python-import", 1),
    (
        "app.py",
        "from paypalcheckoutsdk.orders import OrdersCreateRequest\n",
        "paypal-python-import",
        1,
    ),
    (
        "app.py",
        "import paypalrestsdk\npayment = paypalrestsdk.Payment({})\n",
        "paypal-python-call",
        2,
    ),
    ("app.py", "from square.client import Client\n", "square-python-import", 1),
    ("app.py", "client.payments.create_payment(body=body)\n", "square-python-call", 1),
    ("app.py", "import Adyen\n", "adyen-python-import", 1),
    ("app.py", "from mollie.api.client import Client\n", "mollie-python-import", 1),
    ("app.py", "import razorpay\n", "razorpay-python-import", 1),
    (
        "app.py",
        "import razorpay\norder = razorpay.Client(auth=(k, s)).order.create(data)\n",
        "razorpay-python-call",
        2,
    ),
    ("app.py", "from authorizenet import apicontractsv1\n", "authorizenet-python-import", 1),
    ("app.py", "import checkout_sdk\n", "checkoutcom-python-import", 1),
    ("app.py", "import klarnacheckout\n", "klarna-python-import", 1),
    ("app.py", "from paddle_billing import Client\n", "paddle-python-import", 1),
    ("app.py", "import lemonsqueezy\n", "lemonsqueezy-python-import", 1),
    ("app.py", "import gocardless_pro\n", "gocardless-python-import", 1),
    ("app.py", "from paystackapi.paystack import Paystack\n", "paystack-python-import", 1),
    ("app.pyi", "import stripe\n", "stripe-python-import", 1),
]

JAVASCRIPT = [
    ("pay.js", "const stripe = require('stripe')(process.env.KEY);\n", "stripe-npm-import", 1),
    ("pay.mjs", "\nimport { loadStripe } from '@stripe/stripe-js';\n", "stripe-npm-import", 2),
    ("pay.js", 'import {\n  loadStripe,\n} from "@stripe/stripe-js";\n', "stripe-npm-import", 3),
    ("pay.ts", "const paypal = await import('@paypal/paypal-js');\n", "paypal-npm-import", 1),
    ("Pay.tsx", "import { Elements } from '@stripe/react-stripe-js';\n", "stripe-npm-import", 1),
    ("pay.cjs", 'const braintree = require("braintree");\n', "braintree-npm-import", 1),
    ("server.js", "import { SquareClient } from 'square';\n", "square-npm-import", 1),
    ("pay.js", "import '@adyen/adyen-web/styles/adyen.css';\n", "adyen-npm-import", 1),
    ("pay.ts", "export * from '@mollie/api-client';\n", "mollie-npm-import", 1),
    ("pay.js", "const Razorpay = require('razorpay');\n", "razorpay-npm-import", 1),
    ("pay.js", "import authorizenet from 'authorizenet';\n", "authorizenet-npm-import", 1),
    ("pay.js", "import { Checkout } from 'checkout-sdk-node';\n", "checkoutcom-npm-import", 1),
    ("pay.js", "import { initializePaddle } from '@paddle/paddle-js';\n", "paddle-npm-import", 1),
    (
        "pay.js",
        "import { lemonSqueezySetup } from '@lemonsqueezy/lemonsqueezy.js';\n",
        "lemonsqueezy-npm-import",
        1,
    ),
    ("pay.mts", "import Stripe from 'npm:stripe@14';\n", "stripe-npm-import", 1),
    ("pay.ts", "import Stripe = require('stripe');\n", "stripe-npm-import", 1),
    (
        "Pay.svelte",
        "<script>\n  import { loadStripe } from '@stripe/stripe-js';\n</script>\n",
        "stripe-npm-import",
        2,
    ),
    (
        "Pay.vue",
        "<template><form/></template>\n<script setup lang=\"ts\">\nimport { loadStripe } from '@stripe/stripe-js'\n</script>\n",
        "stripe-npm-import",
        3,
    ),
    # Browser SDK calls.
    (
        "pay.js",
        "paypal.Buttons({ createOrder }).render('#pp');\n",
        "paypal-js-call",
        1,
    ),
    (
        "pay.js",
        "const payments = Square.payments(appId, locationId);\n",
        "square-js-call",
        1,
    ),
    (
        "pay.js",
        "Klarna.Payments.init({ client_token: t });\n",
        "klarna-js-call",
        1,
    ),
    (
        "pay.js",
        "const el = elements.create('card');\n",
        "stripe-card-element",
        1,
    ),
]

MARKUP = [
    (
        "index.html",
        # tcai: allow-payment fixture for the guard's tests
        '<head>\n  <script src="https://js.stripe.com/v3"></script>\n</head>\n',
        "stripe-script",
        2,
    ),
    (
        "base.jinja2",
        # tcai: allow-payment fixture for the guard's tests
        "<script\n  src='https://www.paypal.com/sdk/js?client-id={{ id }}'></script>\n",
        "paypal-script",
        2,
    ),
    (
        "page.html",
        # tcai: allow-payment fixture for the guard's tests
        '<script src="https://unpkg.com/braintree-web@3.100.0/client.min.js"></script>\n',
        "braintree-npm-import",
        1,
    ),
    (
        "form.html",
        # tcai: allow-payment fixture for the guard's tests
        '<form>\n  <input autocomplete="cc-number">\n</form>\n',
        "card-entry-autocomplete",
        2,
    ),
    (
        "form.html",
        # tcai: allow-payment fixture for the guard's tests
        '<input type="text" name="card-number" />\n',
        "card-entry-field",
        1,
    ),
    (
        "form.php",
        # tcai: allow-payment fixture for the guard's tests
        "<input id='cvv' maxlength=4>\n",
        "card-entry-field",
        1,
    ),
    (
        "Pay.jsx",
        "export const Pay = () => (\n  <CardElement options={o} />\n);\n",
        "stripe-card-element",
        2,
    ),
    (
        "Pay.tsx",
        # tcai: allow-payment fixture for the guard's tests
        '<input autoComplete="cc-csc" />\n',
        "card-entry-autocomplete",
        1,
    ),
    (
        "pay.html",
        '<div id="card-element"></div>\n',
        "stripe-card-element",
        1,
    ),
    (
        "pay.html",
        '<div class="braintree-hosted-fields-focused"></div>\n',
        "braintree-js-call",
        1,
    ),
    (
        "pay.html",
        # tcai: allow-payment fixture for the guard's tests
        '<form action="https://www.paypal.com/cgi-bin/webscr" method="post">\n',
        "paypal-checkout-form",
        1,
    ),
    # A URL in Python code: an inline page, a direct API call, a CSP allowing Stripe.js.
    (
        "views.py",
        # tcai: allow-payment fixture for the guard's tests
        'PAGE = """\n<html>\n<script src="https://js.stripe.com/v3"></script>\n"""\n',
        "stripe-script",
        3,
    ),
    (
        "client.py",
        # tcai: allow-payment fixture for the guard's tests
        "import httpx\nhttpx.post('https://api.stripe.com/v1/charges', data=d)\n",
        "stripe-api-endpoint",
        2,
    ),
    (
        "csp.py",
        # tcai: allow-payment fixture for the guard's tests
        'CSP = (\n    "default-src \'self\'; "\n    "script-src https://js.stripe.com"\n)\n',
        "stripe-script",
        3,
    ),
]

MANIFESTS = [
    ("requirements.txt", "requests==2.32\nstripe==7.0\n", "stripe-python-dependency", 2),
    ("requirements-dev.txt", "Stripe[async] >= 7  # payments\n", "stripe-python-dependency", 1),
    ("constraints.txt", "braintree<5\n", "braintree-python-dependency", 1),
    ("requirements/prod.txt", "-r base.txt\nrazorpay\n", "razorpay-python-dependency", 2),
    (
        "requirements.txt",
        "-e git+https://github.com/example/sdk.git#egg=paypalrestsdk\n",
        "paypal-python-dependency",
        1,
    ),
    (
        "pyproject.toml",
        '[project]\nname = "shop"\ndependencies = [\n  "httpx",\n  "stripe>=7",\n]\n',
        "stripe-python-dependency",
        5,
    ),
    (
        "pyproject.toml",
        '[project]\nname = "shop"\n\n[project.optional-dependencies]\npay = ["adyen>=12"]\n',
        "adyen-python-dependency",
        5,
    ),
    (
        "pyproject.toml",
        '[tool.poetry.dependencies]\npython = "^3.11"\nsquareup = "^38"\n',
        "square-python-dependency",
        3,
    ),
    (
        "pyproject.toml",
        '[tool.poetry.group.dev.dependencies]\npytest = "*"\nmollie-api-python = "*"\n',
        "mollie-python-dependency",
        3,
    ),
    ("Pipfile", '[packages]\nrequests = "*"\nstripe = "*"\n', "stripe-python-dependency", 3),
    (
        "setup.cfg",
        "[metadata]\nname = shop\n\n[options]\ninstall_requires =\n    requests\n    checkout-sdk>=3\n",
        "checkoutcom-python-dependency",
        7,
    ),
    (
        "setup.py",
        "from setuptools import setup\n\nsetup(\n    name='shop',\n    install_requires=[\n        'requests',\n        'stripe>=7',\n    ],\n)\n",
        "stripe-python-dependency",
        7,
    ),
    (
        "package.json",
        '{\n  "name": "shop",\n  "dependencies": {\n    "react": "^18",\n    "stripe": "^14.0.0"\n  }\n}\n',
        "stripe-npm-dependency",
        5,
    ),
    (
        "package.json",
        '{\n  "devDependencies": {\n    "@paypal/react-paypal-js": "^8"\n  }\n}\n',
        "paypal-npm-dependency",
        3,
    ),
    (
        "package-lock.json",
        '{\n  "lockfileVersion": 3,\n  "packages": {\n    "node_modules/@stripe/stripe-js": {\n      "version": "2.1.0"\n    }\n  }\n}\n',
        "stripe-npm-dependency",
        4,
    ),
    (
        "yarn.lock",
        'react@^18:\n  version "18.2.0"\n\nstripe@^14.0.0:\n  version "14.0.0"\n',
        "stripe-npm-dependency",
        4,
    ),
    (
        "pnpm-lock.yaml",
        "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      razorpay:\n        specifier: ^2\n",
        "razorpay-npm-dependency",
        5,
    ),
    (
        "poetry.lock",
        '[[package]]\nname = "Stripe"\nversion = "7.0.0"\n',
        "stripe-python-dependency",
        2,
    ),
    (
        "uv.lock",
        'version = 1\n\n[[package]]\nname = "braintree"\n',
        "braintree-python-dependency",
        4,
    ),
    (
        "Pipfile.lock",
        '{\n  "default": {\n    "stripe": {\n      "version": "==7.0.0"\n    }\n  }\n}\n',
        "stripe-python-dependency",
        3,
    ),
]


@pytest.mark.parametrize(
    ("filename", "text", "rule", "line"), PYTHON + JAVASCRIPT + MARKUP + MANIFESTS
)
def test_finds_payment_code(filename: str, text: str, rule: str, line: int) -> None:
    assert (rule, line) in found(text, filename)


@pytest.mark.parametrize(
    ("rule_id", "example"),
    [(rule.id, example) for rule in load_rule_book().rules for example in rule.examples],
)
def test_every_rule_fires_on_its_own_example(rule_id: str, example: payments.Example) -> None:
    """Rules are data; each one carries an example, so none of them can be dead."""
    assert (rule_id, example.line or 1) in found(example.text, example.file)


def test_the_rule_book_covers_every_provider_the_brief_names() -> None:
    kinds: dict[str, set[str]] = {}
    for rule in load_rule_book().rules:
        kinds.setdefault(rule.provider, set()).add(rule.kind)
    assert set(kinds) >= PROVIDERS
    for provider in PROVIDERS:
        assert {"url", "code"} <= kinds[provider], provider
    for provider in PROVIDERS - {"Klarna", "Worldpay", "2Checkout (Verifone)"}:
        sdk = {"python-import", "python-dependency", "npm-import", "npm-dependency"}
        assert sdk <= kinds[provider], provider


def test_a_finding_names_file_line_rule_and_why() -> None:
    [finding] = guard_text("import os\nimport stripe\n", "shop/app.py")
    assert (finding.file, finding.line, finding.rule) == ("shop/app.py", 2, "stripe-python-import")
    assert finding.message == f"Stripe: the Python SDK is imported (imports stripe); {POLICY}"
    assert finding.as_dict() == {
        "file": "shop/app.py",
        "line": 2,
        "rule": "stripe-python-import",
        "message": finding.message,
    }


# --- negatives -------------------------------------------------------------------------------

NEGATIVES = [
    (
        "README.md",
        # tcai: allow-payment fixture for the guard's tests
        'Never `import stripe`.\n<script src="https://js.stripe.com/v3"></script>\n',
    ),
    ("guide.rst", ".. code:: python\n\n   import stripe\n   stripe.Charge.create()\n"),
    ("notes.txt", "stripe==7.0\nbraintree\n"),
    (
        "docs/payments.html",
        # tcai: allow-payment fixture for the guard's tests
        '<script src="https://js.stripe.com/v3"></script>\n',
    ),
    ("docs/example.py", "import stripe\n"),
    ("table.html", '<table class="striped-table"><tr><td>1</td></tr></table>\n'),
    ("site.css", ".striped-table tr:nth-child(odd) { background: #eee; }\n"),
    ("Table.tsx", 'export const T = () => <table className="striped-table" />;\n'),
    ("models.py", "payment_status = 'paid'\npayment_method = None\n"),
    ("prompts.py", 'RULE = "We never take payments; share the booking link instead."\n'),
    (
        "app.py",
        "import square\nimport paddle\nfrom .stripe import helpers\nfrom . import braintree\n",
    ),
    (
        "app.py",
        # tcai: allow-payment fixture for the guard's tests
        '"""Talks about stripe.PaymentIntent.create and <input name="cvc">."""\n',
    ),
    ("app.py", "# import stripe\nx = 1  # stripe.Charge.create()\n"),
    ("app.py", "BOOKING = 'https://squareup.com/appointments/book/abc'\n"),
    (
        "app.js",
        '// import Stripe from "stripe";\n/* require("braintree") */\nArray.from("stripe");\n',
    ),
    (
        "page.html",
        # tcai: allow-payment fixture for the guard's tests
        "<!-- <script src='https://js.stripe.com/v3'></script> -->\n<p>Book now</p>\n",
    ),
    ("page.html", '<input name="phone" autocomplete="tel"><input name="email">\n'),
    ("package.json", '{"name": "stripe", "dependencies": {"react": "^18"}}\n'),
    (
        "package-lock.json",
        '{"packages": {"node_modules/@braintree/sanitize-url": {"version": "6"}}}\n',
    ),
    ("yarn.lock", '"@braintree/sanitize-url@^6":\n  version "6.0.4"\n'),
    ("requirements.txt", "paddlepaddle==2.6\nsquare-geometry==1.0\n# stripe==7.0\n"),
    ("pyproject.toml", '[project]\nname = "stripe-docs"\ndependencies = ["httpx"]\n'),
    ("settings.yaml", "payment_hosts: [stripe.com, paypal.com]\n"),
    ("app.js", "const priceTable = document.querySelector('.striped');\n"),
    # Browser code quoted in Python (another guard's fixture) runs nowhere; a page that ran
    # it would load Stripe.js, and that URL or package is what is found.
    ("fixtures.py", "CHECKOUT_JS = 'const stripe = Stripe(\"pk_test_123\");'\n"),
]


@pytest.mark.parametrize(("filename", "text"), NEGATIVES)
def test_ignores_what_is_not_payment_code(filename: str, text: str) -> None:
    assert found(text, filename) == []


def test_tcai_data_listing_payment_hosts_does_not_count() -> None:
    text = (REPO / "tcai" / "data" / "providers.yaml").read_text(encoding="utf-8")
    assert "stripe.com" in text
    assert found(text, "tcai/data/providers.yaml") == []


def test_the_rule_file_itself_does_not_count() -> None:
    assert (
        found(payments.RULES_FILE.read_text(encoding="utf-8"), "tcai/data/payment_rules.yaml") == []
    )


# --- allow comments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        ("app.py", f"import stripe  # {ALLOW} legacy invoices, removed in #42\n"),
        ("app.py", f"# {ALLOW} legacy invoices\nimport stripe\n"),
        ("pay.js", f"import Stripe from 'stripe'; // {ALLOW} migration script, never deployed\n"),
        (
            "page.html",
            # tcai: allow-payment fixture for the guard's tests
            f'<script src="https://js.stripe.com/v3"></script> <!-- {ALLOW} demo page -->\n',
        ),
        ("requirements.txt", f"stripe==7.0  # {ALLOW} used only by the migration tool\n"),
    ],
)
def test_an_allow_comment_with_a_reason_waives_the_finding(filename: str, text: str) -> None:
    assert found(text, filename) == []


@pytest.mark.parametrize("suffix", ["", "   ", " -->", ":", " */"])
def test_an_allow_comment_without_a_reason_is_itself_a_finding(suffix: str) -> None:
    findings = found(f"import stripe  # {ALLOW}{suffix}\n", "app.py")
    assert ("allow-without-reason", 1) in findings
    assert ("stripe-python-import", 1) in findings


def test_an_allow_comment_waives_only_its_line_and_the_next() -> None:
    text = f"# {ALLOW} legacy\nimport stripe\nimport braintree\n"
    assert found(text, "app.py") == [("braintree-python-import", 3)]


# --- bad input -------------------------------------------------------------------------------


def test_python_that_does_not_parse_is_scanned_line_by_line() -> None:
    text = "import os\nimport stripe\n\ndef broken(:\n    stripe.Charge.create(amount=1)\n"
    assert found(text, "app.py") == [("stripe-python-import", 2), ("stripe-python-call", 5)]


def test_non_utf8_bytes_and_binaries(tmp_path: Path) -> None:
    (tmp_path / "latin.py").write_bytes(
        b"# -*- coding: latin-1 -*-\nNAME = 'caf\xe9'\nimport stripe\n"
    )
    (tmp_path / "garbage.py").write_bytes(b"\xff\xfe\x80\nimport braintree\n")
    (tmp_path / "blob.py").write_bytes(b"\x00\x01\x02import stripe\n")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00import stripe")
    report = guard_paths([tmp_path], root=tmp_path)
    assert [(f.file, f.line, f.rule) for f in report.findings] == [
        ("garbage.py", 2, "braintree-python-import"),
        ("latin.py", 3, "stripe-python-import"),
    ]
    assert report.files_scanned == 2


def test_walk_reports_relative_names_and_skips_docs_and_vendored_code(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "pay.py").write_text("import os\nimport stripe\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "pay.py").write_text("import stripe\n")
    (tmp_path / "node_modules" / "stripe").mkdir(parents=True)
    (tmp_path / "node_modules" / "stripe" / "index.js").write_text("require('stripe')\n")
    (tmp_path / "README.md").write_text("We will never `import stripe`.\n")
    (tmp_path / "package.json").write_text('{"dependencies": {"@stripe/stripe-js": "^2"}}')
    report = guard_paths([tmp_path], root=tmp_path)
    assert [(f.file, f.line, f.rule) for f in report.findings] == [
        ("app/pay.py", 2, "stripe-python-import"),
        ("package.json", 1, "stripe-npm-dependency"),
    ]
    assert report.files_scanned == 2
    document = json.loads(json.dumps(report.as_dict()))
    assert set(document) >= {"findings", "files_scanned"}
    assert set(document["findings"][0]) == {"file", "line", "rule", "message"}


def test_a_file_given_directly_is_scanned(tmp_path: Path) -> None:
    target = tmp_path / "pay.py"
    target.write_text("import stripe\n")
    report = guard_paths([target], root=tmp_path)
    assert [(f.file, f.rule) for f in report.findings] == [("pay.py", "stripe-python-import")]


def test_oversized_and_unreadable_files_become_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "big.js").write_text("require('stripe');\n" * 100)
    (tmp_path / "locked.py").write_text("import stripe\n")
    monkeypatch.setattr(payments, "MAX_FILE_BYTES", 1000)
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.py":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    report = guard_paths([tmp_path], root=tmp_path)
    assert report.findings == []
    assert any(n.startswith("big.js: skipped") for n in report.notes), report.notes
    assert any(n.startswith("locked.py: cannot read") for n in report.notes), report.notes


def test_a_path_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        guard_paths([tmp_path / "missing"])


def test_a_broken_rule_file_fails_loudly() -> None:
    rule = {
        "id": "x",
        "kind": "python-import",
        "match": ["x"],
        "why": "w",
        "examples": [{"file": "a.py", "text": "import x"}],
    }
    with pytest.raises(ValueError, match="used twice"):
        build_rule_book({"providers": [{"name": "P", "rules": [rule, rule]}]})
    with pytest.raises(ValueError, match="unknown kind"):
        build_rule_book({"providers": [{"name": "P", "rules": [{**rule, "kind": "magic"}]}]})
    with pytest.raises(ValueError, match="no keywords"):
        build_rule_book({"providers": [{"name": "P", "rules": [{**rule, "kind": "code"}]}]})


# --- our own repository, SARIF -----------------------------------------------------------------


def test_our_own_repository_is_clean() -> None:
    report = guard_paths([REPO], root=REPO)
    assert report.findings == [], [f"{f.file}:{f.line}: {f.rule}" for f in report.findings]
    assert report.files_scanned > 50


def test_sarif_output(tmp_path: Path) -> None:
    (tmp_path / "pay.py").write_text("import stripe\n")
    (tmp_path / "requirements.txt").write_text("braintree==4\n")
    report = guard_paths([tmp_path], root=tmp_path)
    sarif = json.loads(
        json.dumps(to_sarif(report, tool="tcai guard payments", rules=rule_descriptions()))
    )
    assert sarif["version"] == "2.1.0"
    assert "sarif-2.1.0" in sarif["$schema"]
    [run] = sarif["runs"]
    assert run["tool"]["driver"]["name"] == "tcai guard payments"
    rules = {r["id"]: r["shortDescription"]["text"] for r in run["tool"]["driver"]["rules"]}
    assert rules == {
        "braintree-python-dependency": "Braintree: the Braintree Python SDK is a dependency",
        "stripe-python-import": "Stripe: the Python SDK is imported",
    }
    locations = {
        (
            r["ruleId"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in run["results"]
    }
    assert locations == {
        ("stripe-python-import", "pay.py", 1),
        ("braintree-python-dependency", "requirements.txt", 1),
    }
    assert all(r["level"] == "error" and r["message"]["text"] for r in run["results"])
    assert all(r["partialFingerprints"]["tcai/v1"] for r in run["results"])


def test_rule_descriptions_cover_every_rule() -> None:
    descriptions = rule_descriptions()
    book = load_rule_book()
    assert set(descriptions) == {rule.id for rule in book.rules}
    assert descriptions["allow-without-reason"].startswith("tcai: ")
    assert all(": " in text for text in descriptions.values())
