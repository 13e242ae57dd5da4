"""Operator authentication of the ``/v1`` routes that read or change settlements, months and the
store (settlement runs and their statements with contract terms, closing a month, the store's
parties and refusals): ``Authorization: Bearer <operator token>``, the token of the service's
settings (``operator_token_file`` / ``operator_token``, :mod:`api.http.settings`), compared in
constant time (SHA-256 digests through :func:`hmac.compare_digest`).

Without an operator token configured these routes answer clients on this machine only (a loopback
address; 403 naming the setting otherwise), so a local quick start needs no token while a server
others can reach does not expose them. Behind a reverse proxy on the same machine every client
looks local unless the proxy sends ``X-Forwarded-For`` (uvicorn trusts it from 127.0.0.1): set a
token there. OCPI tokens (``Authorization: Token …``) never open these routes; the public price
transparency routes (quotes, price sheets, lint, health) and the OCPI receiver do not use this.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from api.http.schemas import Problem

SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="operator",
    description="The operator token of the service (ROAMLEDGER_OPERATOR_TOKEN_FILE, "
    "`roamledger serve --operator-token-file`), as 'Authorization: Bearer <token>'. Without one "
    "configured, these routes answer clients on the server's own machine only.",
)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="roamledger operator"'}
HOW = (
    "Hint: send the operator token of the service's settings (operator_token_file, "
    "ROAMLEDGER_OPERATOR_TOKEN_FILE) as 'Authorization: Bearer <token>'"
)
OCPI_TOKEN = "an OCPI token ('Authorization: Token …') does not open the /v1 operator routes"
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no operator token, or a wrong one (WWW-Authenticate: Bearer)"},
    403: {"model": Problem, "description": "no operator token is configured and the client is not local"},
}


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def loopback(request: Request) -> bool:
    """Whether the client's address is this machine's (127.0.0.0/8, ::1, ::ffff:127.x)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


async def require_operator(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(SCHEME)]
) -> None:
    """401/403 unless the request is the operator's (``async``: no thread pool hop)."""
    expected: bytes | None = request.app.state.operator_sha256
    scheme = request.headers.get("authorization", "").strip().partition(" ")[0].lower()
    if expected is None:
        if scheme == "token":  # an OCPI client, local or behind a proxy on this machine
            raise HTTPException(
                403,
                f"{OCPI_TOKEN}; no operator token is configured, so these routes answer local clients "
                "that send no OCPI token. Hint: set ROAMLEDGER_OPERATOR_TOKEN_FILE for remote operators",
            )
        if loopback(request):
            return
        raise HTTPException(
            403,
            "this route answers only clients on the server's own machine while no operator token is "
            "configured. Hint: start the service with an operator token (ROAMLEDGER_OPERATOR_TOKEN_FILE "
            "or `roamledger serve --operator-token-file FILE`) and send 'Authorization: Bearer <token>'",
        )
    if credentials is None:
        if scheme == "token":
            said = OCPI_TOKEN
        elif scheme:
            said = "the Authorization header is not 'Bearer <token>'"
        else:
            said = "this route needs the operator token"
        raise HTTPException(401, f"{said}. {HOW}", headers=CHALLENGE)
    if not hmac.compare_digest(digest(credentials.credentials.strip()), expected):
        raise HTTPException(401, f"wrong operator token. {HOW}", headers=CHALLENGE)


OPERATOR = [Depends(require_operator)]  # a router's dependencies: every route of it is the operator's
