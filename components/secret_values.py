"""The stack's secrets as encrypted Outputs: from config, or generated once."""

from __future__ import annotations

import base64
import hashlib
from typing import Optional

import bcrypt
import pulumi
import pulumi_random as random

from config import NAMESPACE
from core.model import SecretSpec

_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def stable_bcrypt(password: str, context: str) -> str:
    """bcrypt with a salt derived from the password and the stack.

    A random salt would give a new hash, hence a new Traefik file and a
    replaced container, on every `pulumi up`.
    """
    digest = hashlib.sha256(f"{context}\0{password}".encode()).digest()[:16]
    standard = base64.b64encode(digest).decode()[:22]
    table = str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", _BCRYPT_ALPHABET)
    salt = standard.translate(table)
    # bcrypt's last salt character only carries 2 bits: keep it canonical
    salt = salt[:21] + _BCRYPT_ALPHABET[_BCRYPT_ALPHABET.index(salt[21]) & 0x30]
    return bcrypt.hashpw(password.encode(), f"$2b$12${salt}".encode()).decode()


class Secrets(pulumi.ComponentResource):
    """`values[name]` is the secret Output for each spec (and `<name>-bcrypt`)."""

    def __init__(self, name: str, stack: str, specs: tuple[SecretSpec, ...],
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("fourlb:secrets:Secrets", name, None, opts)
        config = pulumi.Config(NAMESPACE)
        self.values: dict[str, pulumi.Output[str]] = {}
        for spec in specs:
            given = config.get_secret(spec.config_key)
            if given is not None:
                self.values[spec.name] = given
                if spec.bcrypt:
                    self.values[f"{spec.name}-bcrypt"] = pulumi.Output.secret(
                        given.apply(lambda value: stable_bcrypt(value, stack)))
                continue
            generated = random.RandomPassword(
                spec.name, length=spec.length, special=False,
                opts=pulumi.ResourceOptions(parent=self))
            self.values[spec.name] = generated.result
            if spec.bcrypt:
                self.values[f"{spec.name}-bcrypt"] = pulumi.Output.secret(generated.bcrypt_hash)
        self.register_outputs({})
