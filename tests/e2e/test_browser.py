"""A real browser (Debian's Chromium, driven by Playwright) uses the web UIs that
run their real program here, through the real Traefik with the plan's headers,
and logs in with the program's generated logins. A Content-Security-Policy
violation on any page fails the test: a header that breaks an application is
fixed in the plan (core/catalog.py), not here.

Chromium resolves the platform's hostnames to the test Traefik and nothing else:
every other name fails to resolve, so neither the browser nor a page calls out.
The pages of stand-ins (Grafana, cAdvisor) prove nothing of their application
and are not loaded (tests/e2e/real/contracts.py says why each is
a stand-in).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator

import pytest

from .conftest import FACTS
from .declared import Declared, DeclaredContainer
from .expectations import ROUTES
from .harness import Edge
from .ollama_standin import ANSWER, MODEL, OllamaStandIn
from .platform import Platform
from .real.contracts import ABC

CHROMIUM = "/usr/lib/chromium/chromium"  # Debian's binary (/usr/bin/chromium wraps it)
TIMEOUT_MS = 30_000
# Chromium's own traffic off (Playwright adds the background-networking flags);
# the resolver rules make it unable to reach anything but the test Traefik.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-component-update", "--disable-domain-reliability",
                 "--no-pings", "--safebrowsing-disable-auto-update",
                 "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,"
                 "MediaRouter,AutofillServerCommunication")
CSP = "Content Security Policy"


@dataclass
class Visit:
    """What the pages of one web UI showed the browser."""

    violations: list[str] = field(default_factory=list)
    pages: int = 0


VISITS: dict[str, Visit] = {}


def _host(service: str) -> str:
    return next(r.host for r in ROUTES if r.service == service and r.stack == "prod")


@pytest.fixture(scope="module")
def browser(edge: Edge) -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed (requirements-dev.txt)")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") != "true":
            pytest.skip(f"{CHROMIUM} is missing (Debian package: chromium)")
        pytest.fail(f"{CHROMIUM} is missing (.ci/install-system-packages installs chromium)")
    hosts = sorted({r.host for r in ROUTES})
    rules = [f"MAP {host} 127.0.0.1:{edge.here.websecure_port}" for host in hosts]
    rules += ["MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, "--host-resolver-rules=" + ", ".join(rules)])
        try:
            yield launched
        finally:
            launched.close()


def _page(browser, visit: Visit, credentials: tuple[str, str] | None = None):
    """A page of a new context: Traefik's default certificate is self-signed here."""
    context = browser.new_context(ignore_https_errors=True, http_credentials=(
        {"username": credentials[0], "password": credentials[1]} if credentials else None))
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("console", lambda message: visit.violations.append(message.text)
            if CSP in message.text else None)
    page.expose_function("fourlbCspViolation", lambda seen: visit.violations.append(seen))
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "window.fourlbCspViolation(e.violatedDirective + ' ' + e.blockedURI));")
    page.on("load", lambda _: setattr(visit, "pages", visit.pages + 1))
    return page


def _visit(name: str) -> Visit:
    return VISITS.setdefault(name, Visit())


def test_the_traefik_dashboard_with_basic_auth(browser, edge: Edge) -> None:
    visit = _visit("traefik dashboard")
    page = _page(browser, visit, edge.admin)
    page.goto(f"https://{edge.dashboard_host}/dashboard/")
    page.get_by_text("Routers", exact=False).first.wait_for()
    assert visit.violations == []


def test_prometheus_with_basic_auth(browser, edge: Edge) -> None:
    visit = _visit("prometheus")
    page = _page(browser, visit, edge.admin)
    answer = page.goto(f"https://{_host('prometheus')}/graph")
    assert answer is not None and answer.status == 200
    page.wait_for_load_state("networkidle")
    assert "Prometheus" in page.title()
    assert visit.violations == []


def test_open_webui_login_and_a_chat(browser, stacks: dict[str, Declared],
                                     host_ollama: OllamaStandIn) -> None:
    webui: DeclaredContainer = stacks["prod"].container("open-webui")
    email = webui.env("WEBUI_ADMIN_EMAIL")
    password = webui.upload("/run/secrets/open-webui-admin-password").content
    visit = _visit("open-webui")
    page = _page(browser, visit)
    page.goto(f"https://{_host('open-webui')}/auth")
    page.locator("input[type=email]").fill(email)
    page.locator("input[type=password]").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/auth" not in url)
    # a new account is shown the release notes first, over the chat
    page.get_by_role("button", name="Okay, Let's Go!").click()
    page.goto(f"https://{_host('open-webui')}/?model={MODEL}")
    prompt = page.locator("#chat-input")
    prompt.click()
    page.keyboard.type("Hello")
    page.keyboard.press("Enter")
    page.get_by_text(ANSWER).first.wait_for()
    assert ("POST", "/api/chat") in host_ollama.requests
    assert visit.violations == []


def test_code_server_login_and_its_editor_over_a_websocket(browser, stacks: dict[str, Declared],
                                                          platform: Platform) -> None:
    editor: DeclaredContainer = stacks["prod"].container("code-server")
    password = editor.upload("/run/secrets/code-server-password").content
    # a file only the server's side knows: the editor lists it once its websocket
    # to the server (the remote filesystem) works through Traefik
    code, output = platform.engine.exec(
        editor.name, ["sh", "-c", "echo fourlb > /config/workspace/fourlb-e2e.txt"], user=f"{ABC}:{ABC}")
    assert code == 0, output
    visit = _visit("code-server")
    page = _page(browser, visit)
    page.goto(f"https://{_host('code-server')}/login")
    page.locator("input[type=password]").fill(password)
    page.locator("input[type=password]").press("Enter")
    page.locator(".monaco-workbench").wait_for()
    page.get_by_text("fourlb-e2e.txt").first.wait_for()
    assert visit.violations == []


def test_zz_the_browser_summary() -> None:
    """The e2e summary's line (the tests above ran first, in file order)."""
    pages = sum(v.pages for v in VISITS.values())
    violations = sum(len(v.violations) for v in VISITS.values())
    FACTS["browser"] = f"{pages} pages, {violations} CSP violations ({', '.join(sorted(VISITS))})"
    assert VISITS, "no page was visited"
