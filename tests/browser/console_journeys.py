"""The staff console in real Chromium, by keyboard, signed in through a real OpenID Connect
provider that is not ours (oidc-provider-mock, on loopback), with axe-core checking every page
and a screenshot of each saved under target/console-screenshots/.

Run by tests/api/browser.rs (cargo test), which builds the binary and this virtualenv first.
Arguments: the counterfoil binary, the screenshot directory.
"""

import csv
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import httpx
import oidc_provider_mock
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import sync_playwright, expect

BINARY, SHOTS = sys.argv[1], sys.argv[2]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PEOPLE = {
    "fiona": {"name": "Fiona Finance", "roles": ["Payments.Refunder"]},
    "arun": {"name": "Arun Approver", "roles": ["Payments.Approver"]},
    "vera": {"name": "Vera Viewer", "roles": ["Payments.Viewer"]},
    "sam": {"name": "Sam Supervisor", "roles": ["Payments.Refunder", "Payments.Approver"]},
    "nora": {"name": "Nora Noaccess", "roles": []},
    # A claim named like a console role that the council never mapped: it grants nothing.
    "mallory": {"name": "Mallory Unmapped", "roles": ["admin", "refunder"]},
}
axe = Axe()
checked_pages = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_counterfoil(issuer, workdir, extra_env):
    port = free_port()
    env = dict(os.environ)
    env.update({
        "COUNTERFOIL_SERVER__BIND": f"127.0.0.1:{port}",
        "DATABASE_URL": f"sqlite://{workdir}/counterfoil.db?mode=rwc",
        "COUNTERFOIL_CONSOLE__OIDC__ISSUER": issuer,
        "COUNTERFOIL_CONSOLE__OIDC__CLIENT_ID": "counterfoil-console",
        "COUNTERFOIL_CONSOLE__OIDC__CLIENT_SECRET__VALUE": "browser-test-secret",
        "COUNTERFOIL_CONSOLE__COUNCIL_NAME": "Browser Test Borough Council",
        "COUNTERFOIL_CONSOLE__TWO_PERSON_THRESHOLD_PENCE": "1000",
        # Many people sign in within a minute here (the limit is per client address).
        "COUNTERFOIL_CONSOLE__SIGN_IN_ATTEMPTS_PER_MINUTE": "100",
        "RUST_LOG": "warn",
    })
    env.update(extra_env)
    # The council's own mapping of its identity provider's app roles: only these grant anything.
    config = os.path.join(workdir, "counterfoil.toml")
    with open(config, "w") as f:
        f.write('[console.oidc.roles]\n'
                '"Payments.Viewer" = ["viewer"]\n'
                '"Payments.Refunder" = ["refunder"]\n'
                '"Payments.Approver" = ["refund_approver"]\n')
    env["COUNTERFOIL_CONFIG"] = config
    process = subprocess.Popen([BINARY], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/readyz", timeout=1)
            return process, base, env
        except Exception:
            time.sleep(0.1)
    raise SystemExit("counterfoil did not start")


def paid_payment(base, env, request_ref):
    key = subprocess.run([BINARY, "keys", "create", "--role", "crm", "--label", "browser test"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    created = httpx.post(base + "/v1/payments", headers={"Authorization": f"Bearer {key}",
                         "Idempotency-Key": request_ref}, json={
        "request_ref": request_ref, "service": "demo", "amount": 2500,
        "description": "Resident parking permit", "return_url": "https://example.org/done"}).json()
    page = httpx.get(created["next_url"]).text
    action = [a.split('"')[0] for a in page.split('action="')[1:] if a.split('"')[0].endswith("/pay")][0]
    httpx.post(action)
    for _ in range(100):
        got = httpx.get(base + f"/v1/payments/{created['id']}", headers={"Authorization": f"Bearer {key}"}).json()
        if got["status"] == "succeeded":
            return created["id"]
        time.sleep(0.1)
    raise SystemExit("the payment did not succeed")


# What axe-core cannot see, measured in the page: every focusable control's focus indicator has
# a colour with at least 3:1 contrast against what is around it (WCAG 2.4.7, 2.4.11, 1.4.11).
FOCUS_CONTRAST_JS = """
() => {
  const rgb = (text) => {
    const m = text && text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(",").map(Number);
    return p.length > 3 && p[3] === 0 ? null : p.slice(0, 3);
  };
  const lum = ([r, g, b]) => {
    const c = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * c(r) + 0.7152 * c(g) + 0.0722 * c(b);
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const behind = (el) => {
    for (let n = el.parentElement; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c) return c;
    }
    return [255, 255, 255];
  };
  const failures = [];
  const controls = document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, [tabindex='0'], [tabindex='-1']");
  for (const el of controls) {
    if (el.tagName === "MAIN") continue;  // the skip link's target, not a control
    if (el.offsetParent === null && getComputedStyle(el).position !== "fixed") continue;
    el.focus();
    if (document.activeElement !== el) continue;
    const s = getComputedStyle(el);
    const colours = [];
    if (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2) colours.push(rgb(s.outlineColor));
    for (const part of (s.boxShadow || "").split(/,(?![^(]*\\))/)) colours.push(rgb(part));
    const bg = rgb(s.backgroundColor);
    if (bg) colours.push(bg);
    const around = behind(el);
    const best = Math.max(0, ...colours.filter(Boolean).map((c) => ratio(c, around)));
    if (best < 3) failures.push(`${el.outerHTML.slice(0, 90)} (best ${best.toFixed(2)}:1)`);
    el.blur();
  }
  return failures;
}
"""


def measured(page, name):
    """Focus visible at 3:1 for every control, and no sideways scrolling at 320 CSS px (1.4.10)."""
    failures = page.evaluate(FOCUS_CONTRAST_JS)
    assert not failures, f"{name}: focus not visible at 3:1: " + "\n".join(failures)
    size = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 640})
    wide = page.evaluate("""() => {
      const width = document.documentElement.clientWidth;
      const over = [...document.querySelectorAll("body *")]
        .filter((el) => el.getBoundingClientRect().right > width + 1)
        .filter((el) => !el.parentElement.closest(".table-wrap"))
        .map((el) => el.outerHTML.slice(0, 80));
      return [document.documentElement.scrollWidth, width, over.slice(0, 5)];
    }""")
    page.set_viewport_size(size)
    assert wide[0] <= wide[1], f"{name} scrolls sideways at 320px: {wide[0]}px wide: {wide[2]}"


def check(page, name):
    """axe-core on the page as it is now, what axe cannot see measured, and a screenshot."""
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)
    results = axe.run(page)
    violations = results.response["violations"]
    assert not violations, f"{name}: " + json.dumps(
        [{"id": v["id"], "nodes": [n["html"] for n in v["nodes"]]} for v in violations], indent=1)
    measured(page, name)
    checked_pages.append(name)


def tab_to(page, selector, limit=60):
    """Presses Tab until the element matching `selector` has focus (keyboard only)."""
    target = page.locator(selector).first
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"could not reach {selector} by keyboard")


def sign_in(page, base, subject):
    page.goto(base + "/console")
    check(page, f"sign-in-{subject}") if subject == "fiona" else None
    tab_to(page, "a.button")
    page.keyboard.press("Enter")
    page.wait_for_selector("input[name=sub]")
    page.keyboard.type(subject)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/console")


def sign_out(page):
    tab_to(page, "button.link-button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/sign-in?reason=signed_out")


def ask_for_refund(page, amount, reason, outcome):
    """Fills the refund form on the payment page by keyboard and waits for `outcome` (sent,
    waiting)."""
    tab_to(page, "#amount")
    page.keyboard.press("Control+A")
    page.keyboard.type(amount)
    tab_to(page, "#reason")
    page.keyboard.type(reason)
    tab_to(page, "button.button-warning")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**done={outcome}**")


def finance_officer(browser, base, payment):
    page = browser.new_page(accept_downloads=True, locale="en-GB")
    sign_in(page, base, "fiona")
    expect(page.locator("header")).to_contain_text("Fiona Finance")
    check(page, "dashboard")
    tab_to(page, "nav a[href='/console/payments']")
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/console/payments")
    check(page, "payments")
    tab_to(page, "#reference")
    page.keyboard.type("CRM-BROWSER-1")
    page.keyboard.press("Enter")
    page.wait_for_url("**reference=CRM-BROWSER-1**")
    check(page, "payments-found")
    tab_to(page, f"a[href='/console/payments/{payment}']")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/console/payments/{payment}")
    check(page, "payment")
    # A mistake first: the error summary links to the field.
    tab_to(page, "#amount")
    page.keyboard.type("12.345")
    tab_to(page, "button.button-warning")
    page.keyboard.press("Enter")
    page.wait_for_selector(".error-summary")
    # The error summary takes focus, so a screen reader reads it and Tab goes on to its links.
    page.wait_for_function("document.activeElement && document.activeElement.classList.contains('error-summary')")
    check(page, "payment-refund-error")
    ask_for_refund(page, "7.50", "Permit cancelled early", "sent")
    expect(page.locator(".banner")).to_contain_text("Refund sent")
    check(page, "payment-refunded")
    tab_to(page, "nav a[href='/console/takings']")
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/console/takings")
    expect(page.locator("tfoot")).to_contain_text("£7.50")
    check(page, "takings")
    tab_to(page, "table a")
    page.keyboard.press("Enter")
    page.wait_for_selector("h1")
    expect(page.locator("main table")).to_contain_text("CRM-BROWSER-1")
    check(page, "takings-day")
    page.goto(base + "/console/payments?reference=CRM-BROWSER-1")
    tab_to(page, "a[href^='/console/payments.csv']")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert [r["crm_reference"] for r in rows] == ["CRM-BROWSER-1"], rows
    assert rows[0]["refunded_pence"] == "750", rows
    assert "created_uk_time (Europe/London)" in rows[0], rows[0].keys()
    page.goto(base + "/console/payments?amount=twelve&from-day=30&from-month=2&from-year=2026")
    expect(page.locator(".error-summary")).to_contain_text("amount")
    check(page, "payments-error")
    page.goto(base + "/console/takings?from=yesterday")
    check(page, "takings-error")
    page.goto(base + "/console/accessibility")
    check(page, "accessibility")
    reflow(page, base, payment)
    return page


def reflow(narrow, base, payment):
    """WCAG 1.4.10: at 320 CSS pixels wide (1280 at 400% zoom) nothing scrolls sideways."""
    narrow.set_viewport_size({"width": 320, "height": 640})
    for path, name in [(f"/console/payments/{payment}", "payment-400-percent"),
                       ("/console/takings", "takings-400-percent")]:
        narrow.goto(base + path)
        wide = narrow.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
        assert not wide, f"{path} scrolls sideways at 320px"
        check(narrow, name)
    narrow.set_viewport_size({"width": 1280, "height": 720})


def two_people(browser, base, payment):
    sam = browser.new_page(locale="en-GB")
    sign_in(sam, base, "sam")
    sam.goto(base + f"/console/payments/{payment}")
    ask_for_refund(sam, "15", "Overcharged", "waiting")
    check(sam, "payment-refund-waiting")
    sam.goto(base + "/console/approvals")
    expect(sam.locator("main table").first).to_contain_text("£15.00")
    check(sam, "approvals-requester")
    # Sam may approve refunds, but not their own.
    tab_to(sam, "button:has-text('Approve')")
    sam.keyboard.press("Enter")
    expect(sam.locator(".banner")).to_contain_text("You cannot approve your own refund")
    check(sam, "approvals-own-refused")
    fiona = browser.new_page(locale="en-GB")
    sign_in(fiona, base, "fiona")
    fiona.goto(base + "/console/approvals")
    assert fiona.locator("button:has-text('Approve')").count() == 0, "a refunder cannot approve"
    arun = browser.new_page(locale="en-GB")
    sign_in(arun, base, "arun")
    arun.goto(base + "/console/approvals")
    check(arun, "approvals")
    tab_to(arun, "button:has-text('Approve')")
    arun.keyboard.press("Enter")
    expect(arun.locator(".banner")).to_contain_text("Refund approved")
    check(arun, "approvals-approved")
    arun.goto(base + f"/console/payments/{payment}")
    refund_row = arun.locator("main table tr", has_text="£15.00")
    expect(refund_row).to_contain_text("Sam Supervisor")
    expect(refund_row).to_contain_text("Arun Approver")
    check(arun, "payment-approved-refund")
    arun.goto(base + "/console/refunds")
    expect(arun.locator("main table").first).to_contain_text("Arun Approver")
    check(arun, "refunds-register")
    # Sign-out ends the session on the server: a copy of the cookie signs nobody in.
    copied = arun.context.cookies()
    sign_out(arun)
    check(arun, "signed-out")
    thief = browser.new_context(locale="en-GB")
    thief.add_cookies(copied)
    stolen = thief.new_page()
    stolen.goto(base + "/console/payments")
    stolen.wait_for_url("**/console/sign-in**")
    thief.close()


def failed_and_declined(browser, base, payment):
    """A refund the provider refuses, then declined with a reason the requester reads."""
    fiona = browser.new_page(locale="en-GB")
    sign_in(fiona, base, "fiona")
    fiona.goto(base + f"/console/payments/{payment}")
    ask_for_refund(fiona, "20", "Duplicate payment", "waiting")
    expect(fiona.locator("main table").first).to_contain_text("Waiting for approval")
    check(fiona, "payment-waiting-refund")
    fiona.goto(base + "/console")
    expect(fiona.locator("main")).to_contain_text("Refunds waiting for a second person")
    assert httpx.post(base + "/sandbox/govuk-pay/_control/faults", json={"refund_refusals": 1}).status_code == 204
    arun = browser.new_page(locale="en-GB")
    sign_in(arun, base, "arun")
    arun.goto(base + "/console/approvals")
    tab_to(arun, "button:has-text('Approve')")
    arun.keyboard.press("Enter")
    expect(arun.locator(".banner")).to_contain_text("The provider did not make the refund")
    check(arun, "approvals-provider-refused")
    arun.goto(base + "/console/refunds?state=failed")
    expect(arun.locator("main table").first).to_contain_text("Fiona Finance")
    check(arun, "refunds-register-failed")
    arun.goto(base + "/console")
    expect(arun.locator("a[href='/console/refunds?state=failed']")).to_contain_text("1")
    check(arun, "dashboard-failed-refund")
    arun.goto(base + "/console/approvals")
    tab_to(arun, "a:has-text('Decline')")
    arun.keyboard.press("Enter")
    arun.wait_for_url("**/decline")
    tab_to(arun, "button.button-warning")
    arun.keyboard.press("Enter")
    expect(arun.locator(".error-summary")).to_contain_text("Enter why you are declining this refund")
    check(arun, "decline-error")
    tab_to(arun, "#reason")
    arun.keyboard.type("Refunded by cheque already")
    tab_to(arun, "button.button-warning")
    arun.keyboard.press("Enter")
    arun.wait_for_url("**done=declined**")
    check(arun, "approvals-declined")
    fiona.goto(base + "/console/approvals")
    expect(fiona.locator("main")).to_contain_text("Declined by Arun Approver")
    expect(fiona.locator("main")).to_contain_text("Refunded by cheque already")
    check(fiona, "approvals-requester-declined")
    fiona.goto(base + f"/console/payments/{payment}")
    expect(fiona.locator("main table").first).to_contain_text("Declined: Refunded by cheque already")
    expect(fiona.locator("main table").first).to_contain_text("Failed")
    check(fiona, "payment-declined-and-failed")


def viewer(browser, base, payment):
    page = browser.new_page(locale="en-GB")
    sign_in(page, base, "vera")
    page.goto(base + f"/console/payments/{payment}")
    assert page.locator("#amount").count() == 0, "no refund form for a viewer"
    response = page.request.post(base + f"/console/payments/{payment}/refunds",
                                 form={"csrf_token": page.locator("input[name=csrf_token]").first.input_value(),
                                       "form_token": "viewer-try", "amount": "1", "reason": "x"},
                                 max_redirects=0)
    assert response.status == 403, response.status
    page.goto(base + "/console/approvals")
    check(page, "forbidden")


def no_role(browser, base):
    """Someone the council's identity provider knows, with no console role: told so, let in nowhere."""
    page = browser.new_page(locale="en-GB")
    page.goto(base + "/console/sign-in/start")
    page.wait_for_selector("input[name=sub]")
    page.keyboard.type("nora")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_contain_text("no role in the payments console")
    check(page, "no-access")
    page.goto(base + "/console/payments")
    page.wait_for_url("**/console/sign-in**")
    # Claims called "admin" and "refunder" that the council did not map give no role at all.
    unmapped = browser.new_page(locale="en-GB")
    unmapped.goto(base + "/console/sign-in/start")
    unmapped.wait_for_selector("input[name=sub]")
    unmapped.keyboard.type("mallory")
    unmapped.keyboard.press("Enter")
    expect(unmapped.locator("main")).to_contain_text("no role in the payments console")


def timeout(browser, issuer):
    """The idle-timeout warning: shown before the session ends, "Stay signed in" by keyboard
    keeps it; doing nothing ends it and the page says why."""
    with tempfile.TemporaryDirectory() as workdir:
        process, base, _ = start_counterfoil(issuer, workdir, {
            "COUNTERFOIL_CONSOLE__IDLE_TIMEOUT_SECONDS": "12"})
        try:
            page = browser.new_page(locale="en-GB")
            sign_in(page, base, "vera")
            started = time.monotonic()
            # Warned half-way (6 s before the end): time for the checks below on a busy machine.
            page.wait_for_selector("#timeout-warning[open]", timeout=12000)
            expect(page.locator("#timeout-warning")).to_contain_text("You will be signed out soon")
            assert page.evaluate("document.activeElement.id") == "timeout-stay", "focus moves into the dialog"
            page.screenshot(path=os.path.join(SHOTS, "timeout-warning.png"), full_page=True)
            violations = axe.run(page).response["violations"]
            assert not violations, json.dumps([v["id"] for v in violations])
            page.keyboard.press("Enter")
            page.wait_for_selector("#timeout-warning", state="hidden")
            # Past the moment the session would have ended: still signed in.
            time.sleep(max(0, 13 - (time.monotonic() - started)))
            assert "/sign-in" not in page.url, page.url
            page.goto(base + "/console/payments")
            assert page.url.endswith("/console/payments"), page.url
            # Now nothing: the warning comes, then the session ends and the page says why.
            page.wait_for_url("**/console/sign-in?reason=timeout", timeout=25000)
            expect(page.locator(".banner")).to_contain_text("signed out")
            check(page, "timed-out")
        finally:
            process.terminate()


def split_refund(browser, base, payment):
    """The threshold (£10 here) counts what one person refunds of a payment alone: £6 goes, a
    second £6 waits for a second person, who approves it; both names are on the refund."""
    fiona = browser.new_page(locale="en-GB")
    sign_in(fiona, base, "fiona")
    for outcome in ["sent", "waiting"]:
        fiona.goto(base + f"/console/payments/{payment}")
        ask_for_refund(fiona, "6", "Charged twice", outcome)
    expect(fiona.locator(".banner")).to_contain_text("With what you have already refunded")
    check(fiona, "payment-split-refund-waiting")
    fiona.goto(base + "/console/refunds?state=waiting")
    expect(fiona.locator("main table").first).to_contain_text("CRM-BROWSER-3")
    check(fiona, "refunds-register-waiting")
    arun = browser.new_page(locale="en-GB")
    sign_in(arun, base, "arun")
    arun.goto(base + "/console/approvals")
    tab_to(arun, "button:has-text('Approve')")
    arun.keyboard.press("Enter")
    expect(arun.locator(".banner")).to_contain_text("Refund approved")
    fiona.goto(base + f"/console/payments/{payment}")
    expect(fiona.locator("main")).to_contain_text("Partly refunded")
    approved = fiona.locator("main table tr", has_text="Arun Approver")
    expect(approved).to_contain_text("Fiona Finance")
    expect(approved).to_contain_text("£6.00")
    check(fiona, "payment-split-refund-approved")
    fiona.goto(base + "/console")
    expect(fiona.locator("main")).to_contain_text("Refunds waiting for a second person")
    check(fiona, "dashboard-after-refunds")


def key_rotation(browser, base):
    """The identity provider now signs with a new key (a rotation): sign-in works at once, with
    no restart of Counterfoil, and the withdrawn key is no longer trusted."""
    page = browser.new_page(locale="en-GB")
    sign_in(page, base, "vera")
    expect(page.locator("header")).to_contain_text("Vera Viewer")
    check(page, "signed-in-after-key-rotation")


def main():
    os.makedirs(SHOTS, exist_ok=True)
    port = free_port()
    issuer = f"http://localhost:{port}"
    with tempfile.TemporaryDirectory() as workdir, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        process = None
        try:
            with oidc_provider_mock.run_server_in_thread(port=port):
                for sub, claims in PEOPLE.items():
                    assert httpx.put(f"{issuer}/users/{sub}", json=claims).status_code == 204
                process, base, env = start_counterfoil(issuer, workdir, {})
                payment = paid_payment(base, env, "CRM-BROWSER-1")
                finance_officer(browser, base, payment)
                two_people(browser, base, payment)
                failed_and_declined(browser, base, paid_payment(base, env, "CRM-BROWSER-2"))
                split_refund(browser, base, paid_payment(base, env, "CRM-BROWSER-3"))
                viewer(browser, base, payment)
                no_role(browser, base)
                timeout(browser, issuer)
            # The same issuer comes back with a new signing key; Counterfoil keeps running (its
            # keys were fetched more than 30 seconds ago, so an unknown key is looked up at once).
            with oidc_provider_mock.run_server_in_thread(port=port):
                for sub, claims in PEOPLE.items():
                    assert httpx.put(f"{issuer}/users/{sub}", json=claims).status_code == 204
                key_rotation(browser, base)
            browser.close()
        finally:
            if process:
                process.terminate()
    print(f"checked {len(checked_pages)} pages with axe-core: {', '.join(checked_pages)}")


if __name__ == "__main__":
    main()
