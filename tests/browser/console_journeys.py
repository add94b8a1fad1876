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
import tempfile
import time

import httpx
import oidc_provider_mock
from playwright.sync_api import sync_playwright, expect

import casework_journeys
import income_journeys
from journey_kit import (CHROMIUM_FLAGS, PEOPLE, SHOTS, ask_for_refund, axe, check, checked_pages, free_port, paid_payment,
                         sign_in, sign_out, start_counterfoil, tab_to)


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
    # (Playwright's own focus check: wait_for_function would evaluate a string, which the console's
    # Content-Security-Policy rightly refuses whenever the first check is not already true.)
    expect(page.locator(".error-summary")).to_be_focused()
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
    page.focus("input[name=sub]")
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
    unmapped.focus("input[name=sub]")
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
                casework_journeys.run(browser, issuer)
                income_journeys.run(browser, issuer)
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
