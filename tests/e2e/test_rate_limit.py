"""The AI API answers at most its configured rate per client address; a client
over it gets 429 (with the security headers), and other hostnames are unaffected."""

from __future__ import annotations

import yaml

from config.loading import StackFile
from core.traefik import RATELIMIT_AI_API

from .declared import Declared
from .harness import Edge

API_HOST, API_PATH = "ai.4lb.ca", "/api/rate-limit-probe"
OTHER_HOST = "llm.4lb.ca"


def _ai_api_limit(stacks: dict[str, Declared]) -> dict:
    content = stacks["prod"].container("traefik-config").upload("/etc/traefik/dynamic/middlewares.yml").content
    return yaml.safe_load(content)["http"]["middlewares"][RATELIMIT_AI_API]["rateLimit"]


def test_the_ai_api_is_rate_limited_per_client(stacks: dict[str, Declared], edge: Edge) -> None:
    configured = StackFile("prod").config().rate_limits.ai_api_per_minute
    limit = _ai_api_limit(stacks)
    assert (limit["average"], limit["period"]) == (configured, "1m")
    # a burst well over what the bucket holds, faster than it refills (1 per
    # second at 60/min): bounded in count
    responses = [edge.get(API_HOST, API_PATH) for _ in range(limit["burst"] + 20)]
    statuses = [r.status for r in responses]
    assert statuses.count(200) >= limit["burst"] - 1, statuses
    assert 429 in statuses, statuses
    # a refusal carries the headers too (the bucket refills one a second, so the
    # refusal is taken from the burst, not asked for again)
    refused = next(r for r in responses if r.status == 429)
    assert refused.header("Strict-Transport-Security") and refused.header("Content-Security-Policy")
    # the default limit of the other routers is far higher: they still answer
    assert edge.get(OTHER_HOST, "/").status == 200
