"""Serves the fourlb policy pack to the Pulumi engine (blocks until stopped).

    python -m venv policy/venv && policy/venv/bin/pip install -r policy/requirements.txt
    pulumi preview --policy-pack policy

The rules live in rules.py, importable and tested without this server.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from rules import policies
from secret_view import keep_secret_markers

keep_secret_markers()

PolicyPack(
    name="fourlb",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies(),
)
