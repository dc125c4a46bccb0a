"""Secrets a subscription needs at delivery time, kept out of the database in clear text.

Two ways in, as the issue asks: `--secret-env VAR` stores only the variable's name (the delivering process reads
it, so the secret never enters the database), and a secret given through the API, or a destination URL holding
credentials (`amqp://user:pass@...`), is stored encrypted (Fernet: AES-128-CBC + HMAC-SHA256, from
`cryptography`) with a key from `$STACKWATCH_SECRET_KEY` (`Fernet.generate_key()`; docs/push.md). Without the
key such a subscription is refused with a message saying how to set one, never stored in clear.
"""

from __future__ import annotations

import os

ENV_SECRET_KEY = "STACKWATCH_SECRET_KEY"


class SecretError(ValueError):
    """A secret cannot be stored or read: no key, a wrong key, or a variable that is not set."""


def _fernet():  # noqa: ANN202 - cryptography is imported only where a secret is handled
    from cryptography.fernet import Fernet

    key = os.environ.get(ENV_SECRET_KEY)
    if not key:
        raise SecretError(f"set ${ENV_SECRET_KEY} (a Fernet key: python -c 'from cryptography.fernet import "
                          "Fernet; print(Fernet.generate_key().decode())') to store secrets encrypted, or name "
                          "an environment variable with --secret-env")
    try:
        return Fernet(key.encode())
    except ValueError as exc:
        raise SecretError(f"${ENV_SECRET_KEY} is not a Fernet key: {exc}") from None


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretError(f"a stored secret cannot be decrypted with ${ENV_SECRET_KEY} (was the key changed?)") \
            from None


def from_env(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise SecretError(f"${variable} (the subscription's --secret-env) is not set in this process")
    return value
