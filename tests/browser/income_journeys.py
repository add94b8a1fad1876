"""Takings into the income system, in real Chromium by keyboard, on a Counterfoil of its own that
writes its batches as files: the batches found from the main menu, one opened, downloaded twice
(byte for byte the same, with its digest) and marked as imported; last month's totals per fund
and the month locked after its confirmation page; a Stripe payout read from the provider and a
charge nobody made through Counterfoil flagged; a viewer who may look at all of it and do none of
it. axe-core and the measures of journey_kit on every page.
"""

import base64
import hashlib
import sqlite3
import subprocess
import tempfile
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect

from journey_kit import BINARY, check, paid_payment, sign_in, start_counterfoil, tab_to

LONDON = ZoneInfo("Europe/London")
STRIPE_KEY = "sk_test_counterfoil_simulator_key"

# The development accounts, written out (a file that names any service replaces the built-in
# ones), each service with its codes, and an ICON-style file layout.
SETTINGS = """
[accounts.sandbox]
kind = "govuk_pay"
base_url = "simulator"
api_key = { value = "api_test_counterfoil_simulator_key" }
webhook_secrets = [{ value = "webhook_test_counterfoil_simulator_secret" }]

[accounts.stripe-sandbox]
kind = "stripe"
base_url = "simulator"
api_key = { value = "sk_test_counterfoil_simulator_key" }
webhook_secrets = [{ value = "whsec_counterfoil_simulator_secret" }]

[services.demo]
name = "Demo service"
account = "sandbox"
fund_code = "DEMO"
cost_centre = "CC000"

[services.demo.posting]
office_code = "CF"
vat_code = "Z"
mop_codes = { govuk_pay = { card = "GPC" } }

[services.demo-stripe]
name = "Demo service on Stripe"
account = "stripe-sandbox"
fund_code = "STRP"
cost_centre = "CC001"

[services.demo-stripe.posting]
office_code = "CF"
vat_code = "S"
vat_rate_basis_points = 2000
mop_codes = { stripe = { card = "STC" } }

[income]
target = "file"
starts_on = "{starts_on}"
worker = false

[income.file]
header = true
date_format = "%d/%m/%Y"
amount_format = "pounds"
columns = [
  { title = "Fund", field = "fund_code" },
  { title = "Reference", field = "account_reference" },
  { title = "Amount", field = "amount" },
  { title = "Date", field = "transaction_date" },
  { title = "Source", text = "WEB" },
]
"""


def moved_to(workdir, payment, day):
    """Dates a payment's success at noon in London on `day` (as if the day were over)."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=LONDON).astimezone(timezone.utc)
    with sqlite3.connect(f"{workdir}/counterfoil.db") as db:
        db.execute("UPDATE payments SET finished_at = ? WHERE id = ?", (noon.isoformat(), payment))


def takings(base, env, workdir, last_month_day, yesterday):
    """Two days of takings, one in last month, and the batches built for every day since."""
    moved_to(workdir, paid_payment(base, env, "CRM-INCOME-1"), yesterday)
    moved_to(workdir, paid_payment(base, env, "CRM-INCOME-2"), last_month_day)
    moved_to(workdir, paid_payment(base, env, "CRM-INCOME-3", "demo-stripe", 4800), yesterday)
    built = subprocess.run([BINARY, "income"], env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    # A payout of everything Stripe holds, with a charge made in its dashboard, not through us.
    answer = httpx.post(base + "/sandbox/stripe/_control/payouts",
                        json={"api_key": STRIPE_KEY, "outside_charge": 700})
    assert answer.status_code == 200, answer.text


def batches(fiona, base, yesterday):
    fiona.goto(base + "/console")
    tab_to(fiona, "nav a[href='/console/income']")
    fiona.keyboard.press("Enter")
    fiona.wait_for_url(base + "/console/income")
    expect(fiona.locator("main")).to_contain_text("CF-sandbox-")
    check(fiona, "income")
    day = f"{yesterday.day} {yesterday.strftime('%B %Y')}"
    row = fiona.locator("tbody tr", has_text="sandbox").filter(has_text=day).filter(has_text="£25.00")
    link = row.locator("a").first
    href = link.get_attribute("href")
    tab_to(fiona, f"main a[href='{href}']")
    fiona.keyboard.press("Enter")
    fiona.wait_for_url(base + href)
    expect(fiona.locator("main")).to_contain_text("Ready to download and import")
    check(fiona, "income-batch")
    document = base + href + "/document"
    first, second = fiona.request.get(document), fiona.request.get(document)
    assert first.body() == second.body(), "a batch reads back byte for byte"
    digest = base64.b64encode(hashlib.sha256(first.body()).digest()).decode()
    assert first.headers["repr-digest"] == f"sha-256=:{digest}:", first.headers
    assert first.body().decode().startswith("Fund,Reference,Amount,Date,Source\r\nDEMO,CRM-INCOME-1,25.00,")
    tab_to(fiona, "main button[type=submit]")
    with fiona.expect_navigation(url="**done=imported**"):
        fiona.keyboard.press("Enter")
    expect(fiona.locator("main")).to_contain_text("Posted by Fiona Finance")
    check(fiona, "income-batch-imported")
    return href


def month_end(fiona, base, last_month):
    fiona.goto(base + "/console/income/months")
    name = last_month.strftime("%B %Y")
    expect(fiona.locator("main")).to_contain_text(name)
    check(fiona, "income-months")
    tab_to(fiona, f"main a:has-text('Lock {name}')")
    fiona.keyboard.press("Enter")
    fiona.wait_for_url("**/lock")
    expect(fiona.locator("main")).to_contain_text("cannot be undone")
    check(fiona, "income-lock-confirm")
    tab_to(fiona, "main button.button-warning")
    with fiona.expect_navigation(url="**done=locked**"):
        fiona.keyboard.press("Enter")
    expect(fiona.locator("main")).to_contain_text("Locked by Fiona Finance")
    check(fiona, "income-months-locked")


def payouts(fiona, base):
    tab_to(fiona, "nav a[href='/console/payouts']")
    fiona.keyboard.press("Enter")
    fiona.wait_for_url(base + "/console/payouts")
    tab_to(fiona, "main button[type=submit]")
    with fiona.expect_navigation(url="**done=read**"):
        fiona.keyboard.press("Enter")
    expect(fiona.locator("main")).to_contain_text("Needs a person")
    check(fiona, "payouts")
    tab_to(fiona, "main a[href^='/console/payouts/stripe-sandbox/po_']")
    fiona.keyboard.press("Enter")
    fiona.wait_for_url("**/console/payouts/stripe-sandbox/po_*")
    main = fiona.locator("main")
    expect(main).to_contain_text("Not ours: no payment or refund carries it")
    expect(main).to_contain_text("£7.00")
    check(fiona, "payout")


def viewer_looks_only(browser, base, batch):
    vera = browser.new_page(locale="en-GB")
    sign_in(vera, base, "vera")
    vera.goto(base + batch)
    assert vera.locator("main form[method=post]").count() == 0, "a viewer is offered no act"
    check(vera, "income-viewer")
    csrf = vera.locator("input[name=csrf_token]").first.input_value()
    month = (date.today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    for path in [batch + "/imported", batch + "/post-again", f"/console/income/months/{month}/lock",
                 "/console/payouts/read"]:
        response = vera.request.post(base + path, form={"csrf_token": csrf}, max_redirects=0)
        assert response.status == 403, (path, response.status)
    vera.close()


def run(browser, issuer):
    today = datetime.now(LONDON).date()
    yesterday = today - timedelta(days=1)
    last_month = today.replace(day=1) - timedelta(days=1)
    starts_on = last_month.replace(day=1)
    with tempfile.TemporaryDirectory() as workdir:
        process, base, env = start_counterfoil(issuer, workdir, {}, extra_toml=SETTINGS.replace(
            "{starts_on}", starts_on.isoformat()))
        try:
            takings(base, env, workdir, last_month.replace(day=15), yesterday)
            fiona = browser.new_page(locale="en-GB")
            sign_in(fiona, base, "fiona")
            batch = batches(fiona, base, yesterday)
            month_end(fiona, base, last_month)
            payouts(fiona, base)
            fiona.close()
            viewer_looks_only(browser, base, batch)
        finally:
            process.terminate()
