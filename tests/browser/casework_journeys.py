"""What needs a person, in real Chromium by keyboard, on a Counterfoil of its own: an item of each
kind made to happen through the simulators (a payment nobody finished, a create whose answer was
lost, a CRM receiver that keeps failing, a payment only the provider has, a refund the provider
refused) and settled by its action; a reconciliation run started from its page; an erasure
confirmed and then absent from the subject export; an API key made, shown once, used and
revoked; a viewer refused every action. axe-core and the measures of journey_kit on every page.
"""

import json
import subprocess
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect

from journey_kit import BINARY, check, free_port, paid_payment, sign_in, start_counterfoil, tab_to

SIMULATOR_KEY = "api_test_counterfoil_simulator_key"


class Crm:
    """A CRM receiver on loopback that answers 500 while `failing`, then 200."""

    def __init__(self):
        self.failing = True
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(500 if crm.failing else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def key(env, role):
    return subprocess.run([BINARY, "keys", "create", "--role", role, "--label", f"browser {role}"],
                          env=env, capture_output=True, text=True, check=True).stdout.strip()


def new_payment(base, crm_key, request_ref):
    return httpx.post(base + "/v1/payments", headers={"Authorization": f"Bearer {crm_key}",
                      "Idempotency-Key": request_ref}, json={
        "request_ref": request_ref, "service": "demo", "amount": 2500, "email": "resident@example.org",
        "description": "Resident parking permit", "return_url": "https://example.org/done"}, timeout=30)


def pay(next_url):
    page = httpx.get(next_url).text
    action = [a.split('"')[0] for a in page.split('action="')[1:] if a.split('"')[0].endswith("/pay")][0]
    httpx.post(action)


def control(base, path, body):
    assert httpx.post(base + "/sandbox/govuk-pay/_control/" + path, json=body).status_code == 204, path


def press(page, selector, wait_for=None, limit=150):
    """Tabs to `selector` and presses Enter; with `wait_for`, waits for the page it leads to (a
    new page, even when its address is the same as the last one's)."""
    tab_to(page, selector, limit)
    if wait_for:
        with page.expect_navigation(url=wait_for):
            page.keyboard.press("Enter")
        page.wait_for_load_state()
    else:
        page.keyboard.press("Enter")


def make_trouble(base, env, crm):
    """One item of each kind; returns their ids."""
    crm_key, finance_key, admin_key = key(env, "crm"), key(env, "finance"), key(env, "admin")
    stuck = new_payment(base, crm_key, "CRM-STUCK-1").json()
    made_at = time.monotonic()
    # The CRM fails; the paid payment's notification uses its attempts and gives up.
    told = paid_payment(base, env, "CRM-DEAD-1")
    for _ in range(100):
        dead = httpx.get(base + "/v1/notifications?status=dead", headers={"Authorization": f"Bearer {admin_key}"}).json()["items"]
        if dead:
            break
        time.sleep(0.3)
    assert dead, "the notification did not give up"
    control(base, "faults", {"refund_refusals": 1})
    refused = httpx.post(base + f"/v1/payments/{told}/refunds", headers={"Authorization": f"Bearer {finance_key}",
                         "Idempotency-Key": "refused-1"}, json={"amount": 300, "reason": "Permit cancelled"}, timeout=10)
    assert refused.status_code == 502, refused.text
    till = httpx.post(base + "/sandbox/govuk-pay/v1/payments", headers={"Authorization": f"Bearer {SIMULATOR_KEY}"}, json={
        "amount": 700, "reference": "COUNTER-TILL", "description": "Paid at the counter",
        "return_url": "https://council.example.gov.uk/x"})
    assert till.status_code == 201
    return {"stuck": stuck, "made_at": made_at, "crm_key": crm_key, "admin_key": admin_key}


def reconcile_from_the_page(browser, base):
    fiona = browser.new_page(locale="en-GB")
    sign_in(fiona, base, "fiona")
    fiona.goto(base + "/console/reconciliation")
    check(fiona, "reconciliation")
    today = datetime.now(ZoneInfo("Europe/London"))
    tab_to(fiona, "#account")
    fiona.keyboard.type("sandbox")
    assert fiona.locator("#account").input_value() == "sandbox"
    tab_to(fiona, "#day")
    fiona.keyboard.type(str(today.day))
    fiona.keyboard.press("Tab")
    fiona.keyboard.type(str(today.month))
    fiona.keyboard.press("Tab")
    fiona.keyboard.type(str(today.year))
    press(fiona, "button:has-text('Start reconciliation')", "**done=started**")
    for _ in range(100):
        if fiona.locator(".tag-running").count() == 0:
            break
        time.sleep(0.2)
        fiona.reload()
    expect(fiona.locator("main")).to_contain_text("Only the provider has it")
    expect(fiona.locator("main dl")).to_contain_text("Finished")
    check(fiona, "reconciliation-run")
    return fiona


def settle_each(fiona, base, trouble, crm):
    stuck = trouble["stuck"]["id"]
    fiona.goto(base + "/console/attention")
    for kind in ["stuck_payment", "unknown_create", "dead_notification", "discrepancy", "failed_refund"]:
        expect(fiona.locator(f".tag-{kind}").first).to_be_visible()
    check(fiona, "attention")
    # The CRM is mended; what it missed is sent again below.
    crm.failing = False
    # The citizen pays; the webhook is lost; asking the provider settles it.
    control(base, "webhooks", {"mode": "drop"})
    pay(trouble["stuck"]["next_url"])
    press(fiona, f"#item-stuck_payment-{stuck} button", "**done=settled**")
    expect(fiona.locator(".banner")).to_contain_text("The provider answered")
    check(fiona, "attention-settled")
    press(fiona, ".attention-item:has(.tag-unknown_create) button", "**done=settled**")
    # The paid payment's notification, and the failed refund's: each sent again.
    for _ in range(5):
        if fiona.locator(".tag-dead_notification").count() == 0:
            break
        press(fiona, ".attention-item:has(.tag-dead_notification) button", "**done=retried**")
    press(fiona, ".attention-item:has(.tag-discrepancy) a.link", "**/resolve")
    press(fiona, "main button.button")
    expect(fiona.locator(".error-summary")).to_contain_text("Enter what was done")
    check(fiona, "resolve-error")
    tab_to(fiona, "#note")
    fiona.keyboard.type("Taken at the counter; booked by the cashier")
    press(fiona, "main button.button", "**done=resolved**")
    press(fiona, ".attention-item:has(.tag-failed_refund) a.link", "**/resolve")
    check(fiona, "resolve")
    tab_to(fiona, "#note")
    fiona.keyboard.type("Refunded by cheque")
    press(fiona, "main button.button", "**done=resolved**")
    for kind in ["unknown_create", "dead_notification", "discrepancy", "failed_refund"]:
        assert fiona.locator(f".tag-{kind}").count() == 0, \
            f"{kind} still listed: {fiona.locator('.attention-item').all_inner_texts()} " + \
            httpx.get(base + "/v1/notifications", headers={"Authorization": f"Bearer {trouble['admin_key']}"}).text
    assert fiona.locator(f"#item-stuck_payment-{stuck}").count() == 0
    fiona.goto(base + "/console")
    expect(fiona.locator("a[href='/console/attention?kind=failed_refund']")).to_contain_text("0")
    check(fiona, "dashboard-attention")


def dpo(browser, base):
    dana = browser.new_page(locale="en-GB", accept_downloads=True)
    sign_in(dana, base, "dana")
    press(dana, "nav a[href='/console/data-protection']", base + "/console/data-protection")
    tab_to(dana, "#reference")
    dana.keyboard.type("CRM-STUCK-1")
    dana.keyboard.press("Enter")
    dana.wait_for_url("**reference=CRM-STUCK-1**")
    check(dana, "data-protection")
    press(dana, "main table a", "**/subject?reference=CRM-STUCK-1")
    check(dana, "subject")

    def exported():
        dana.goto(base + "/console/data-protection/subject?reference=CRM-STUCK-1")
        tab_to(dana, "a[href*='export.json']")
        with dana.expect_download() as download:
            dana.keyboard.press("Enter")
        return json.load(open(download.value.path(), encoding="utf-8"))

    before = exported()
    assert before["payments"][0]["held"]["email"] == "resident@example.org", before
    press(dana, "a.button-warning", "**/erase?reference=CRM-STUCK-1")
    expect(dana.locator("main")).to_contain_text("What is kept")
    check(dana, "erase-confirm")
    press(dana, "button.button-warning", "**done=erased**")
    expect(dana.locator(".banner")).to_contain_text("Personal data erased")
    check(dana, "subject-erased")
    after = exported()
    text = json.dumps(after)
    assert "resident@example.org" not in text and "Resident parking permit" not in text, text
    assert after["payments"][0]["payment"]["amount"] == 2500
    dana.goto(base + "/console/data-protection")
    press(dana, "button:has-text('Preview the next sweep')")
    expect(dana.locator("main")).to_contain_text("Nothing has been changed")
    press(dana, "nav a[href='/console/audit']", base + "/console/audit")
    press(dana, "button:has-text('Verify the trail now')", "**done=verified**")
    expect(dana.locator(".banner")).to_contain_text("The audit trail is intact")
    tab_to(dana, "#who")
    dana.keyboard.type("Dana")
    dana.keyboard.press("Enter")
    dana.wait_for_url("**who=Dana**")
    expect(dana.locator("main table")).to_contain_text("data_protection.erased")
    check(dana, "audit-trail")


def admin(browser, base, vera):
    ada = browser.new_page(locale="en-GB")
    sign_in(ada, base, "ada")
    press(ada, "nav a[href='/console/access']", base + "/console/access")
    check(ada, "access")
    tab_to(ada, "#label")
    ada.keyboard.type("Second portal")
    # Into the radio group by Tab, then the arrow keys choose within it (as a keyboard user does).
    for _ in range(5):
        ada.keyboard.press("Tab")
        if ada.evaluate("document.activeElement.name") == "role":
            break
    for _ in range(3):
        if ada.locator("#role").is_checked():
            break
        ada.keyboard.press("ArrowDown")
    assert ada.locator("#role").is_checked(), "the CRM role chosen by keyboard"
    press(ada, "button:has-text('Make the key')")
    ada.wait_for_selector("#new-key")
    token = ada.locator("#new-key").input_value()
    assert token.startswith("cf_"), token
    check(ada, "key-created")
    made = new_payment(base, token, "CRM-KEY-1")
    assert made.status_code == 201, made.text
    ada.goto(base + "/console/access")
    assert token not in ada.content(), "shown once"
    row = ada.locator("main table tr", has_text="Second portal")
    expect(row).to_contain_text("Active")
    press(ada, "a:has-text('Revoke'):has(span:has-text('Second portal'))", "**/revoke")
    check(ada, "revoke-key")
    press(ada, "button.button-warning", "**done=revoked**")
    assert new_payment(base, token, "CRM-KEY-2").status_code == 401, "revoked: refused"
    # Vera's session ends from here; her next page asks her to sign in.
    press(ada, "tr:has-text('staff:vera') button", "**done=session_ended**")
    check(ada, "access-session-ended")
    vera.goto(base + "/console/payments")
    vera.wait_for_url("**/console/sign-in**")


def viewer_refused(browser, base):
    vera = browser.new_page(locale="en-GB")
    sign_in(vera, base, "vera")
    vera.goto(base + "/console/attention")
    assert vera.locator("main form[method=post]").count() == 0, "a viewer is offered no action"
    assert vera.locator("a:has-text('Mark as resolved')").count() == 0
    check(vera, "attention-viewer")
    csrf = vera.locator("input[name=csrf_token]").first.input_value()
    for path in ["/console/attention/stuck_payment/x/ask-provider", "/console/attention/dead_notification/x/retry",
                 "/console/attention/discrepancy/1/resolve", "/console/reconciliation",
                 "/console/data-protection/erase", "/console/data-protection/preview", "/console/audit/verify",
                 "/console/access/keys", "/console/access/keys/x/revoke", "/console/access/sessions/end"]:
        response = vera.request.post(base + path, form={"csrf_token": csrf, "note": "x", "reference": "CRM-STUCK-1",
                                                        "label": "x", "role": "admin", "handle": "x",
                                                        "account": "sandbox"}, max_redirects=0)
        assert response.status == 403, (path, response.status)
    for path in ["/console/data-protection", "/console/audit", "/console/access"]:
        assert vera.goto(base + path).status == 403, path
    check(vera, "casework-forbidden")
    return vera


def run(browser, issuer):
    crm = Crm()
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    with tempfile.TemporaryDirectory() as workdir:
        process, base, env = start_counterfoil(issuer, workdir, {
            "COUNTERFOIL_CONSOLE__STUCK_AFTER_MINUTES": "1",
            "COUNTERFOIL_POLLER__ENABLED": "false",
        }, extra_toml=(f'[notifications]\ndefault_url = "http://127.0.0.1:{crm.port}/crm"\n'
                       f'secrets = [{{ value = "{secret}" }}]\nretry_schedule_seconds = [1]\n'
                       'timeout_seconds = 1\npoll_interval_ms = 200\n'))
        try:
            trouble = make_trouble(base, env, crm)
            fiona = reconcile_from_the_page(browser, base)
            # A create whose answer is lost: the provider answers after our 10 s timeout (the
            # wait overlaps the minute the unfinished payment needs to become stuck).
            control(base, "faults", {"create_delay_ms": 11000, "create_delays": 1})
            assert new_payment(base, trouble["crm_key"], "CRM-LOST-1").status_code == 502
            # The payment nobody finished is stuck a minute after it was made.
            time.sleep(max(0, 62 - (time.monotonic() - trouble["made_at"])))
            vera = viewer_refused(browser, base)
            settle_each(fiona, base, trouble, crm)
            dpo(browser, base)
            admin(browser, base, vera)
        finally:
            process.terminate()
            crm.server.shutdown()
