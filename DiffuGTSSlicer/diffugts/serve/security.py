"""Who may bind where and who may call: loopback by default, a bearer token for anything else."""

from __future__ import annotations

import ipaddress
import secrets

from ..errors import DiffuGTSError

MIN_TOKEN_CHARS = 16
TOKEN_HINT = 'Make one with: python -c "import secrets; print(secrets.token_hex(16))".'


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses (127.0.0.0/8, ::1); any other name or address is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token, and a token too short to resist guessing."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise DiffuGTSError(f"the token has {len(token)} characters; at least {MIN_TOKEN_CHARS} are needed",
                            hint=TOKEN_HINT)
    if token is None and not is_loopback(host):
        raise DiffuGTSError(f"refusing to listen on {host} without a token: anyone who can reach it could use it",
                            hint="Set DIFFUGTS_TOKEN or --token-file, or keep the default --host 127.0.0.1 and "
                                 "connect through an SSH tunnel.")


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an Authorization header carries ``token`` as a bearer token (constant-time comparison)."""
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), token.encode())
