"""Each platform application's response headers fit what it documents it needs
(core.catalog's HeaderPolicy entries, with their citations); sites keep the
strict default unless their stack gives them a policy."""

from __future__ import annotations

from core.traefik import DEFAULT_CSP, application_headers, effective_headers
from tests.plans import prod_plan


def test_code_server_frames_its_own_webviews_and_keeps_its_own_policy():
    code = prod_plan().container("code-server")
    headers = effective_headers(code)
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Content-Security-Policy" not in headers
    assert application_headers(code) == ("Content-Security-Policy",)
    assert dict(code.labels)["fourlb.csp"] == "application"


def test_grafana_sends_its_own_nonce_policy_and_refuses_frames():
    grafana = prod_plan().container("grafana")
    env = dict(grafana.env)
    assert env["GF_SECURITY_CONTENT_SECURITY_POLICY"] == "true"
    template = env["GF_SECURITY_CONTENT_SECURITY_POLICY_TEMPLATE"]
    # the nonce Grafana replaces per request, its eval, its blob: workers, no framing
    for needed in ("$NONCE", "'unsafe-eval'", "worker-src 'self' blob:", "frame-ancestors 'none'"):
        assert needed in template, needed
    assert effective_headers(grafana)["X-Frame-Options"] == "DENY"
    assert application_headers(grafana) == ("Content-Security-Policy",)


def test_open_webui_gets_a_policy_for_its_workers_wasm_frames_and_microphone():
    webui = prod_plan().container("open-webui")
    headers = effective_headers(webui)
    csp = headers["Content-Security-Policy"]
    for needed in ("'wasm-unsafe-eval'", "worker-src 'self'", "frame-src 'self'",
                   "media-src 'self' blob:", "frame-ancestors 'self'"):
        assert needed in csp, needed
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "microphone=(self)" in headers["Permissions-Policy"]
    assert not application_headers(webui)


def test_sites_and_the_other_services_keep_the_strict_default():
    plan = prod_plan()
    for name in ("jsr-solutions-prod", "prometheus", "ai-orchestrator-frontend", "traefik"):
        headers = effective_headers(plan.container(name))
        assert headers["Content-Security-Policy"] == DEFAULT_CSP, name
        assert headers["X-Frame-Options"] == "DENY", name
    assert "frame-ancestors 'none'" in DEFAULT_CSP
