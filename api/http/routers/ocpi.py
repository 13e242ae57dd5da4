"""The OCPI receiver, eMSP side (2.1.1, 2.2.1, 2.3.0): versions, credentials (POST registers, token
A → C, once; PUT gives a new token C; DELETE unregisters; GET; our credentials name our own party,
``ocpi_party`` of the settings), tariffs pushed by CPOs (PUT, PATCH, GET, DELETE) and CDRs (POST,
GET). Party codes in URLs are case-insensitive (CiString): upper-cased at the edge (:func:`party_codes`).

Every answer is an OCPI envelope (``data``, ``status_code``, ``status_message``, ``timestamp``). A
request carries ``Authorization: Token …`` (plain, or base64 as 2.2.1 sends it); the token names one
party, and that party reads and writes only objects under its own ``country_code``/``party_id``.
Writes go through :class:`settlement.store.Store`: one transaction each, a re-posted CDR is
idempotent, a different CDR under a stored id is refused (and logged as a conflict). CDR POSTs
share their transaction with the POSTs that wait at the same time (group commit,
:mod:`settlement.store.pushes`) and are answered only once it is committed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import weakref
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from pricing.errors import RoamledgerError
from pricing.io import loads
from settlement.store import Conflict, Store, StoreError
from settlement.store.pushes import NotStored, Outcome, Push, Pushes, stage

VERSIONS = ("2.1.1", "2.2.1", "2.3.0")
MODULES = ("credentials", "tariffs", "cdrs")

router = APIRouter(prefix="/ocpi", tags=["ocpi"])


class OcpiError(Exception):
    """An OCPI error answer: HTTP status, OCPI status code (2xxx client errors) and a message."""

    def __init__(self, http_status: int, status_code: int, message: str) -> None:
        super().__init__(message)
        self.http_status, self.status_code, self.message = http_status, status_code, message


TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"  # an envelope's timestamp: UTC, whole seconds


def envelope(data: Any = None, status_code: int = 1000, message: str = "Success") -> dict[str, Any]:
    return {
        "data": data,
        "status_code": status_code,
        "status_message": message,
        "timestamp": datetime.now(UTC).strftime(TIMESTAMP),
    }


def ocpi_response(
    data: Any = None, http_status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = orjson.dumps(envelope(data), default=str)
    return Response(body, status_code=http_status, media_type="application/json", headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(OcpiError)
    async def _ocpi(request: Request, exc: OcpiError) -> Response:
        body = orjson.dumps(envelope(None, exc.status_code, exc.message))
        return Response(body, status_code=exc.http_status, media_type="application/json")


# ---- dependencies -------------------------------------------------------------------------------


async def get_store(request: Request) -> Store:  # async: no thread pool hop
    return need_store(getattr(request.app.state, "store", None))


def need_store(store: Store | None) -> Store:
    if store is None:
        raise OcpiError(503, 3000, "no store configured. Hint: start the service with ROAMLEDGER_STORE_URL")
    return store


StoreDep = Annotated[Store, Depends(get_store)]


def token_of(request: Request) -> str:
    return token_in(request.headers.get("authorization", ""))


def token_in(header: str) -> str:
    """The token of an ``Authorization`` header value (401 without one, or with another scheme)."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() == "token" and token.strip():
        return token.strip()
    if not scheme:
        message = "missing Authorization header"
    elif scheme.lower() == "bearer":
        message = "OCPI does not take 'Authorization: Bearer'; Bearer is for the operator token of /v1"
    elif scheme.lower() == "token":
        message = "the Authorization header has no token after 'Token'"
    else:
        message = f"the Authorization scheme {scheme[:20]!r} is not OCPI's"
    raise OcpiError(401, 2000, f"{message}. Hint: OCPI sends 'Authorization: Token <token>'")


UNKNOWN_TOKEN = (
    "unknown token: neither a registration token (token A) nor the current token of a registered "
    "party (a token replaced by a credentials update, or of an unregistered party, stops working). "
    "Hint: send your current token C, or register with a token A from the eMSP"
)


def lookup_token(store: Store, token: str) -> tuple[tuple[str, str, str], str] | None:
    """The party of a request token and the token text the store knows: the token as sent, or
    its base64 decoding (2.2.1 sends tokens base64-encoded)."""
    found = store.party_of_token(token)
    if found is not None:
        return found, token
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    found = store.party_of_token(decoded)
    return None if found is None else (found, decoded)


def party_of(request: Request, store: StoreDep) -> tuple[str, str, str]:
    """(country_code, party_id, role) of the request's token; the token may be base64 (2.2.1)."""
    found = lookup_token(store, token_of(request))
    if found is None:
        raise OcpiError(401, 2000, UNKNOWN_TOKEN)
    return found[0]


PartyDep = Annotated[tuple[str, str, str], Depends(party_of)]


async def pusher_of(store: Store, authorization: str) -> tuple[tuple[str, str, str], str]:
    """The party of a CDR push and the digest of its token, from the process's token cache when
    the token was seen lately (:mod:`settlement.store.pushes`: the write checks it again)."""
    token = token_in(authorization)
    pushes = store.pushes
    hit = pushes.cached_party(token)
    if hit is not None:
        return hit
    found = await run_in_threadpool(lookup_token, store, token)
    if found is None:
        raise OcpiError(401, 2000, UNKNOWN_TOKEN)
    return pushes.remember(token, *found)


def version_of(version: str) -> str:
    if version not in VERSIONS:
        raise OcpiError(
            404, 2000, f"OCPI version {version} is not served. Hint: one of {', '.join(VERSIONS)}"
        )
    return version


def party_codes(country_code: str, party_id: str) -> tuple[str, str]:
    """A URL's country_code and party_id as the store holds them: OCPI party codes are CiString
    (case-insensitive), so ``/tariffs/nl/myc/…`` is NL*MYC's. Applied at the edge, once per route."""
    return country_code.upper(), party_id.upper()


def own(party: tuple[str, str, str], country_code: str, party_id: str) -> tuple[str, str]:
    """Party isolation: a token reaches only objects under its own country_code/party_id (compared
    case-insensitively); the URL's party codes normalized (:func:`party_codes`)."""
    country_code, party_id = party_codes(country_code, party_id)
    if (country_code, party_id) != party_codes(party[0], party[1]):
        raise OcpiError(
            403, 2000, f"{country_code}*{party_id} is not the party of this token ({party[0]}*{party[1]})"
        )
    return country_code, party_id


async def body_of(request: Request) -> Any:
    """The JSON object of the body (its text is kept on ``request.state.raw``: what the store keeps)."""
    obj, request.state.raw = json_object(await request.body())
    return obj


def json_object(raw: bytes) -> tuple[dict[str, Any], str]:
    """A body's JSON object and its text as the store keeps it (400 when it is not one object)."""
    try:
        obj = loads(raw)
    except ValueError as exc:
        raise OcpiError(400, 2001, f"the body is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise OcpiError(400, 2001, "the body must be one JSON object")
    return obj, raw.strip().removeprefix(b"\xef\xbb\xbf").decode("utf-8")


BodyDep = Annotated[dict[str, Any], Depends(body_of)]


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# ---- versions and credentials -------------------------------------------------------------------


@router.get("/versions", summary="The OCPI versions this receiver serves")
def versions(request: Request, party: PartyDep) -> Response:
    return ocpi_response([{"version": v, "url": f"{base_url(request)}/ocpi/{v}"} for v in VERSIONS])


@router.get("/{version}", summary="The modules of one OCPI version")
def details(request: Request, version: str, party: PartyDep) -> Response:
    version_of(version)
    endpoints = [
        {"identifier": m, "role": "RECEIVER", "url": f"{base_url(request)}/ocpi/{version}/{m}"}
        for m in MODULES
    ]
    if version == "2.1.1":
        endpoints = [{"identifier": e["identifier"], "url": e["url"]} for e in endpoints]
    return ocpi_response({"version": version, "endpoints": endpoints})


def own_credentials(request: Request, version: str, token: str) -> dict[str, Any]:
    """The credentials of this receiver (the eMSP) for a party: its token to call us, our versions
    URL, and our party (``ocpi_party`` of the settings) — 2.1.1 as one party with its business
    details, 2.2.1 and 2.3.0 as ``roles``."""
    settings = request.app.state.settings
    own = settings.own_party()
    if own is None:
        raise OcpiError(
            503,
            3000,
            "the receiver's own OCPI party is not configured. Hint: start the service with "
            "ROAMLEDGER_OCPI_PARTY=CC*PID (this eMSP's country code and party id, e.g. DE*MSP)",
        )
    party = {"country_code": own[0], "party_id": own[1]}
    business = {"business_details": {"name": settings.ocpi_party_name}}
    credentials: dict[str, Any] = {"token": token, "url": f"{base_url(request)}/ocpi/versions"}
    if version == "2.1.1":
        return credentials | business | party
    return credentials | {"roles": [{"role": "EMSP"} | business | party]}


def check_credentials(body: dict[str, Any]) -> None:
    """The sender's credentials object: its token B and versions URL (kept nowhere: this receiver
    never calls the sender; its roles are not checked either)."""
    for field in ("token", "url"):
        if not isinstance(body.get(field), str) or not body[field].strip():
            raise OcpiError(400, 2001, f"the credentials object needs a {field!r} (a non-empty string)")


def credentials_token(request: Request, store: Store) -> tuple[str, bool]:
    """The request's token as the store knows it (plain, or base64 as 2.2.1 sends it) and whether
    its party is registered (token C) or not (token A)."""
    found = lookup_token(store, token_of(request))
    if found is None:
        raise OcpiError(401, 2000, UNKNOWN_TOKEN)
    return found[1], store.registered(found[1])


REGISTERED = "this party is already registered. Hint: PUT credentials to update them, DELETE to unregister"
NOT_REGISTERED = "this party is not registered yet. Hint: POST credentials with your token A to register"


@router.get("/{version}/credentials", summary="Our credentials for the calling party")
def get_credentials(request: Request, version: str, store: StoreDep) -> Response:
    version_of(version)
    token, _ = credentials_token(request, store)
    return ocpi_response(own_credentials(request, version, token))


@router.post("/{version}/credentials", summary="Register: token A in, token C out")
def register(request: Request, version: str, credentials: BodyDep, store: StoreDep) -> Response:
    """The party calls with the token A we gave it and its credentials (its token B, its roles); we
    answer with a new token C for all later calls, and token A stops working. A registered party
    is refused (405, as OCPI says: PUT updates, DELETE unregisters)."""
    version_of(version)
    token_a, registered = credentials_token(request, store)
    if registered:
        raise OcpiError(405, 2000, REGISTERED)
    check_credentials(credentials)
    token_c = secrets.token_urlsafe(32)
    ours = own_credentials(request, version, token_c)  # before token A is spent
    if not store.register(token_a, token_c):  # a concurrent POST with the same token A won
        raise OcpiError(405, 2000, REGISTERED)
    return ocpi_response(ours)


@router.put("/{version}/credentials", summary="Update: a new token C, the old one stops working")
def update_credentials(request: Request, version: str, credentials: BodyDep, store: StoreDep) -> Response:
    version_of(version)
    token, registered = credentials_token(request, store)
    if not registered:
        raise OcpiError(405, 2000, NOT_REGISTERED)
    check_credentials(credentials)
    token_c = secrets.token_urlsafe(32)
    ours = own_credentials(request, version, token_c)
    if not store.replace_token(token, token_c):  # a concurrent update replaced it first
        raise OcpiError(401, 2000, UNKNOWN_TOKEN)
    return ocpi_response(ours)


@router.delete("/{version}/credentials", summary="Unregister: the party's token stops working")
def unregister(request: Request, version: str, store: StoreDep) -> Response:
    version_of(version)
    token, registered = credentials_token(request, store)
    if not registered or not store.unregister(token):
        raise OcpiError(405, 2000, NOT_REGISTERED)
    return ocpi_response(None)


# ---- tariffs ------------------------------------------------------------------------------------

TARIFF = "/{version}/tariffs/{country_code}/{party_id}/{tariff_id}"


@dataclass(frozen=True, slots=True)
class TariffRef:
    country_code: str
    party_id: str
    tariff_id: str

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id}*{self.tariff_id}"


def own_tariff(version: str, country_code: str, party_id: str, tariff_id: str, party: PartyDep) -> TariffRef:
    """The tariff of a route's path, once the version is served and the path is the token's party."""
    version_of(version)
    country_code, party_id = own(party, country_code, party_id)
    return TariffRef(country_code, party_id, tariff_id)


TariffDep = Annotated[TariffRef, Depends(own_tariff)]


@router.put(TARIFF, summary="A CPO pushes a tariff (a new last_updated is a new version)")
def put_tariff(request: Request, ref: TariffDep, obj: BodyDep, party: PartyDep, store: StoreDep) -> Response:
    if obj.get("id") != ref.tariff_id:
        raise OcpiError(
            400, 2001, f"the body's id {obj.get('id')!r} is not the URL's tariff id {ref.tariff_id!r}"
        )
    where = f"PUT {request.url.path}"
    stored = write(
        store, party, "tariff", where, lambda: store.put_tariff(obj, ref.country_code, ref.party_id, where)
    )
    return ocpi_response(None, 201 if stored.outcome == "stored" else 200)


@router.patch(TARIFF, summary="A CPO changes part of a tariff (with a new last_updated)")
def patch_tariff(
    request: Request, ref: TariffDep, patch: BodyDep, party: PartyDep, store: StoreDep
) -> Response:
    if "last_updated" not in patch:
        raise OcpiError(400, 2001, "a PATCH must carry last_updated (OCPI)")
    current = store.tariff(ref.country_code, ref.party_id, ref.tariff_id)
    if current is None:
        raise OcpiError(404, 2004, f"tariff {ref} is not stored")
    where = f"PATCH {request.url.path}"
    merged = current | patch
    write(
        store, party, "tariff", where, lambda: store.put_tariff(merged, ref.country_code, ref.party_id, where)
    )
    return ocpi_response(None)


@router.get(TARIFF, summary="The stored tariff (its newest version)")
def get_tariff(ref: TariffDep, store: StoreDep) -> Response:
    tariff = store.tariff_json(ref.country_code, ref.party_id, ref.tariff_id)
    if tariff is None:
        raise OcpiError(404, 2004, f"tariff {ref} is not stored")
    return ocpi_response(orjson.Fragment(tariff))  # its numbers as sent: JSON numbers, not text


@router.delete(TARIFF, summary="A CPO withdraws a tariff (kept for sessions before the deletion)")
def delete_tariff(ref: TariffDep, store: StoreDep) -> Response:
    if not store.delete_tariff(ref.country_code, ref.party_id, ref.tariff_id):
        raise OcpiError(404, 2004, f"tariff {ref} is not stored")
    return ocpi_response(None)


# ---- CDRs ---------------------------------------------------------------------------------------


PUSH_ERRORS = {"conflict": (409, 2000), "rejected": (400, 2001), "token": (401, 2000)}


@router.post("/{version}/cdrs", summary="A CPO posts a CDR (Location: where to GET it)")
async def post_cdr(request: Request, version: str) -> Response:
    """Validated here, written by the process's group-commit writer with the POSTs that arrive
    meanwhile; answered once its transaction is committed. Served by :mod:`api.http.cdr_posts`
    in front of the router (this route answers the same where that is not installed)."""
    store = getattr(request.app.state, "store", None)
    raw = await request.body()
    authorization = request.headers.get("authorization", "")
    http_status, location = await push_cdr(store, version, raw, authorization, request.url.path)
    location = f"{base_url(request)}{location}"
    return ocpi_response(None, http_status, {"Location": location})


async def push_cdr(
    store: Store | None, version: str, raw: bytes, authorization: str, path: str
) -> tuple[int, str]:
    """A pushed CDR through its checks (store, body, token, version) and the group commit: the HTTP
    status of its success (201 new, 200 the same again) and the path of the stored CDR, for the
    Location header; an :class:`OcpiError` otherwise."""
    store = need_store(store)
    obj, text = json_object(raw)
    party, token_sha256 = await pusher_of(store, authorization)
    version_of(version)
    push = stage(obj, party, token_sha256, f"POST {path}", text)
    try:
        done = await outbox(store.pushes).send(push)
    except NotStored as exc:
        raise OcpiError(503, 3000, str(exc)) from exc
    if done.outcome in PUSH_ERRORS:
        http_status, status_code = PUSH_ERRORS[done.outcome]
        message = UNKNOWN_TOKEN if done.outcome == "token" else done.message or ""
        raise OcpiError(http_status, status_code, message)
    # the id percent-encoded: a header is latin-1 bytes, and an id may hold any character
    location = f"/ocpi/{version}/cdrs/{party[0]}/{party[1]}/{quote(done.object_id, safe='')}"
    return (201 if done.outcome == "stored" else 200), location


class Outbox:
    """The CDR pushes of one event loop on their way to the store's writer: those staged in the same
    turn of the loop are queued as one group (:meth:`Pushes.submit_all`: one wake-up of the writer
    thread, the same batch), and their answers come back with one wake-up of the loop. The group
    leaves at the loop's next turn, no timer here (the writer may wait a moment for more:
    :data:`settlement.store.pushes.GATHER_S`)."""

    def __init__(self, pushes: Pushes, loop: asyncio.AbstractEventLoop) -> None:
        self.pushes, self.loop = pushes, loop
        self.waiting: list[tuple[Push, asyncio.Future[Outcome]]] = []

    def send(self, push: Push) -> asyncio.Future[Outcome]:
        answer: asyncio.Future[Outcome] = self.loop.create_future()
        if not self.waiting:
            self.loop.call_soon(self.flush)
        self.waiting.append((push, answer))
        return answer

    def flush(self) -> None:
        group, self.waiting = self.waiting, []
        answers = [a for _, a in group]

        def answered(futures: list[Future[Outcome]]) -> None:  # in the writer's thread
            try:
                self.loop.call_soon_threadsafe(self.deliver, answers, futures)
            except RuntimeError:  # the loop is closed: nobody waits for these answers
                pass

        try:
            self.pushes.submit_all([p for p, _ in group], answered)
        except Exception as exc:  # answered as the route answers an unexpected error
            for a in answers:
                a.set_exception(exc)

    @staticmethod
    def deliver(answers: list[asyncio.Future[Outcome]], futures: list[Future[Outcome]]) -> None:
        for answer, done in zip(answers, futures, strict=True):
            if answer.done():  # the request went away (cancelled)
                continue
            failure = done.exception()
            if failure is not None:
                answer.set_exception(failure)
            else:
                answer.set_result(done.result())


_OUTBOXES: weakref.WeakKeyDictionary[Pushes, Outbox] = weakref.WeakKeyDictionary()


def outbox(pushes: Pushes) -> Outbox:
    """The running loop's outbox to ``pushes`` (one per process and loop)."""
    loop = asyncio.get_running_loop()
    box = _OUTBOXES.get(pushes)
    if box is None or box.loop is not loop:
        box = _OUTBOXES[pushes] = Outbox(pushes, loop)
    return box


@router.get("/{version}/cdrs/{country_code}/{party_id}/{cdr_id}", summary="A stored CDR, as it was sent")
def get_cdr(
    version: str, country_code: str, party_id: str, cdr_id: str, party: PartyDep, store: StoreDep
) -> Response:
    version_of(version)
    country_code, party_id = own(party, country_code, party_id)
    cdr = store.cdr_json(country_code, party_id, cdr_id)
    if cdr is None:
        raise OcpiError(404, 2004, f"CDR {country_code}*{party_id}*{cdr_id} is not stored")
    return ocpi_response(orjson.Fragment(cdr))


def write(store: Store, party: tuple[str, str, str], kind: str, source: str, action: Any) -> Any:
    """A store write with its refusals as OCPI errors (a conflict 409, a bad object 400), each in
    the store's ingest log (the store logs conflicts itself)."""
    try:
        return action()
    except Conflict as exc:
        raise OcpiError(409, 2000, str(exc)) from exc
    except (StoreError, RoamledgerError) as exc:
        store.log_refusal(party[0], party[1], kind, exc, source)
        raise OcpiError(400, 2001, str(exc)) from exc
