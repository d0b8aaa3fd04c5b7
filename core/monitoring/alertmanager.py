"""alertmanager.yml: every alert goes out by email through the stack's SMTP server.

The SMTP password is a file of its own (`smtp_auth_password_file`), so the
secret never sits in the main configuration.
"""

from __future__ import annotations

from typing import Any

from config.models import StackConfig

from ..files import to_yaml
from ..model import Upload, secret

CONFIG_FILE = "/etc/alertmanager/alertmanager.yml"
PASSWORD_FILE = "/etc/alertmanager/secrets/smtp-password"
EMAIL = "email"
# without SMTP settings alerts still show in Alertmanager's and Grafana's pages
NOWHERE = "ui-only"


def alertmanager_config(config: StackConfig) -> dict[str, Any]:
    smtp = config.alerting.smtp
    receiver = EMAIL if smtp else NOWHERE
    result: dict[str, Any] = {
        "route": {
            "receiver": receiver,
            "group_by": ["alertname", "stack"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            # a warning may wait; a critical alert is repeated until it is fixed
            "routes": [{"matchers": ['severity="warning"'], "repeat_interval": "12h"}],
        },
        # without cAdvisor every container looks absent: say that once, not per container
        "inhibit_rules": [{
            "source_matchers": ['alertname="MetricsTargetDown"', 'job="cadvisor"'],
            "target_matchers": ['alertname="ContainerDown"'],
        }],
        "receivers": [{"name": receiver}],
    }
    if smtp:
        smtp_global: dict[str, Any] = {
            "smtp_smarthost": f"{smtp.host}:{smtp.port}",
            "smtp_from": smtp.from_address,
            "smtp_hello": config.platform_domain,
            "smtp_require_tls": smtp.require_tls,
        }
        if smtp.username:
            smtp_global["smtp_auth_username"] = smtp.username
            smtp_global["smtp_auth_password_file"] = PASSWORD_FILE
        result["global"] = smtp_global
        result["receivers"] = [{
            "name": EMAIL,
            # one message to every recipient
            "email_configs": [{"to": ", ".join(smtp.to), "send_resolved": True}],
        }]
    return result


def alertmanager_files(config: StackConfig) -> tuple[Upload, ...]:
    uploads = [Upload(CONFIG_FILE, to_yaml(alertmanager_config(config)))]
    smtp = config.alerting.smtp
    if smtp and smtp.username:
        # Alertmanager runs as `nobody`, uploads belong to root: it must be
        # world-readable inside a container that runs nothing else
        uploads.append(Upload(PASSWORD_FILE, secret("smtp-password"), mode="0444"))
    return tuple(uploads)
