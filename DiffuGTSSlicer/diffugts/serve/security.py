"""Who may bind where and who may call: a bearer token on every request but /health (a random one when none is
given on loopback), and on loopback only Host names that are this machine's (no DNS rebinding)."""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Iterable

from ..errors import DiffuGTSError

MIN_TOKEN_CHARS = 16
TOKEN_HINT = 'Make one with: python -c "import secrets; print(secrets.token_hex(16))".'
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
PUBLIC_PATHS = frozenset({"/health"})  # answered without a token: status and version only


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


def new_token() -> str:
    """A random token for a server started without one (as Jupyter does): 32 hex digits."""
    return secrets.token_hex(16)


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The names a request's Host header may carry: on a loopback bind this machine's loopback names (a web
    page that rebinds its own name to 127.0.0.1 still sends its own name); on any other bind any name (None:
    the token is the boundary there) unless ``extra`` names are given."""
    names = frozenset(name.lower().strip("[]") for name in extra)
    if is_loopback(host):
        return LOOPBACK_NAMES | {host.lower().strip("[]")} | names
    return names or None


def host_name(header: str) -> str:
    """The name of a Host header without its port: 'gpu-box:8765' -> 'gpu-box', '[::1]:8765' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an Authorization header carries ``token`` as a bearer token (constant-time comparison)."""
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), token.encode())


class Guard:
    """ASGI middleware in front of every route (the API, and FastAPI's own ones): a Host outside ``hosts`` is
    403, a request without the token 401, both answered before any body is read."""

    def __init__(self, app, *, token: str | None, hosts: frozenset[str] | None) -> None:
        self.app, self.token, self.hosts = app, token, hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
            host = headers.get("host", "")
            if self.hosts is not None and host_name(host) not in self.hosts:
                return await _refuse(send, 403, f"the Host header {host!r} is not a name this server answers to")
            if scope["path"] not in PUBLIC_PATHS and not authorized(headers.get("authorization"), self.token):
                return await _refuse(send, 401, "missing or wrong token", [(b"www-authenticate", b"Bearer")])
        await self.app(scope, receive, send)


async def _refuse(send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})
