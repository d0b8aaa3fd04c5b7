"""Let the policies see which inputs are secret.

The Pulumi engine sends every resource's inputs to a policy pack with their
secret markers (`{"4dabf…": "1b47…", "value": …}`), but pulumi-policy's Python
`Analyze` (1.21) unwraps them before any validate function runs: a secret
password and a plain one arrive as the same string. Without the marker the
"credentials only as secrets" rule cannot be written.

`keep_secret_markers()` swaps the deserializer that `Analyze` uses for one that
turns each marked value into `pulumi_policy.Secret(value)` (the type the SDK
already uses for remediations). Unknown values (during a preview) stay the
SDK's sentinels, so `UnknownValueError` behaves as before. `__main__.py`
installs it before serving the pack; tests apply `deserialize_keeping_secrets`
to the wire-format inputs the mocks record.
"""

from __future__ import annotations

from typing import Any, Mapping

from pulumi_policy import Secret
from pulumi_policy import deserialize as _wire
from pulumi_policy import policy as _analyzer

SIG_KEY = _wire.SPECIAL_SIG_KEY
SECRET_SIG = _wire.SPECIAL_SECRET_SIG

_original = _analyzer.deserialize_properties


def _keep(value: Any) -> Any:
    if isinstance(value, list):
        return [_keep(item) for item in value]
    if isinstance(value, Mapping):
        signature = value.get(SIG_KEY)
        if signature == SECRET_SIG:
            return Secret(_keep(value["value"]))
        if signature is not None:  # assets and archives
            return _wire._deserialize_property(dict(value))
        return {key: _keep(item) for key, item in value.items()}
    return value


def deserialize_keeping_secrets(props: Mapping[str, Any], proxy_secrets: bool = False) -> Any:
    """Drop-in for `pulumi_policy.deserialize.deserialize_properties`."""
    if proxy_secrets:  # the remediation path: leave the SDK's own behaviour
        return _original(props, True)
    return {key: _keep(value) for key, value in props.items()}


def keep_secret_markers() -> None:
    if not hasattr(_analyzer, "deserialize_properties"):
        raise RuntimeError(
            "pulumi_policy.policy.deserialize_properties is gone: this pulumi-policy version "
            "is not supported; see policy/secret_view.py")
    _analyzer.deserialize_properties = deserialize_keeping_secrets
