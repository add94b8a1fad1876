"""What every browser journey is made with: Counterfoil started on its embedded default with a
real OpenID Connect provider that is not ours, the people it knows, and `check`, which runs
axe-core on a page, measures what axe cannot (focus visible at 3:1, no sideways scroll at 320 px)
and saves a screenshot.

Imported by console_journeys.py (the entry point) and casework_journeys.py.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import httpx
from axe_playwright_python.sync_playwright import Axe

BINARY, SHOTS = sys.argv[1], sys.argv[2]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PEOPLE = {
    "fiona": {"name": "Fiona Finance", "roles": ["Payments.Refunder"]},
    "arun": {"name": "Arun Approver", "roles": ["Payments.Approver"]},
    "vera": {"name": "Vera Viewer", "roles": ["Payments.Viewer"]},
    "sam": {"name": "Sam Supervisor", "roles": ["Payments.Refunder", "Payments.Approver"]},
    "dana": {"name": "Dana Protection", "roles": ["Payments.DPO"]},
    "ada": {"name": "Ada Admin", "roles": ["Payments.Admin"]},
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


def start_counterfoil(issuer, workdir, extra_env, extra_toml=""):
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
                '"Payments.Approver" = ["refund_approver"]\n'
                '"Payments.DPO" = ["dpo"]\n'
                '"Payments.Admin" = ["admin"]\n' + extra_toml)
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


def paid_payment(base, env, request_ref, service="demo", amount=2500):
    """A payment made through the CRM API and paid on the simulator's page; its id."""
    key = subprocess.run([BINARY, "keys", "create", "--role", "crm", "--label", "browser test"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    created = httpx.post(base + "/v1/payments", headers={"Authorization": f"Bearer {key}",
                         "Idempotency-Key": request_ref}, json={
        "request_ref": request_ref, "service": service, "amount": amount,
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
        .filter((el) => !el.parentElement.closest(".table-wrap"));
      // Inside a scrolling table only what escapes it (positioned out of its box) counts.
      const escaped = [...document.querySelectorAll(".table-wrap *")]
        .filter((el) => el.getBoundingClientRect().right > width + 1)
        .filter((el) => getComputedStyle(el).position === "absolute");
      // Text too long to wrap widens its element's overflow, not its box: the deepest such.
      const spilled = [...document.querySelectorAll("body *")]
        .filter((el) => !el.closest(".table-wrap") && el.scrollWidth > el.clientWidth + 1)
        .filter((el) => getComputedStyle(el).overflowX === "visible")
        .slice(-3);
      return [document.documentElement.scrollWidth, width,
              over.concat(escaped, spilled).slice(0, 6).map((el) => el.outerHTML.slice(0, 100))];
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
    passed = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
        passed.append(page.evaluate("document.activeElement && document.activeElement.outerHTML.slice(0, 60)"))
    raise AssertionError(f"could not reach {selector} by keyboard; passed: {passed[:12]}")


def sign_in(page, base, subject):
    page.goto(base + "/console")
    check(page, f"sign-in-{subject}") if subject == "fiona" else None
    tab_to(page, "a.button")
    page.keyboard.press("Enter")
    # The identity provider's page (not ours) autofocuses its field only once loaded; typing
    # before that went nowhere and the sign-in waited forever. Focus it first.
    page.wait_for_selector("input[name=sub]")
    page.focus("input[name=sub]")
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


