"""API key management: ``POST /api/generate-key``, ``/api/revoke-key``, ``/api/regenerate-key``.

Proof of identity is the account's ``username`` + ``password`` (parameters or HTTP Basic). For
revoke and regenerate a valid key (``X-API-Key`` or ``api_key``) is proof too, and then the
request acts on that key alone: a key can revoke or rotate itself, never touch or mint others.

Which keys are revoked: the key sent as ``X-API-Key``/``api_key``, else the one named by
``key_id``, else every key of the account. Regenerate answers ``201`` (a key was created).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import falcon

from api.auth import account_credentials, raw_api_key
from api.params import request_params
from api.schemas import GenerateKeyParams, RegenerateKeyParams, RevokeKeyParams, load
from bridge.errors import InvalidInput, Unauthorized

NEEDS_PASSWORD = (
    "Send the account's username and password (parameters or HTTP Basic); "
    "an API key cannot create keys."
)
NEEDS_PROOF = (
    "Send the account's username and password (parameters or HTTP Basic), "
    "or the API key itself as X-API-Key or api_key."
)
ONLY_ITSELF = (
    "An API key can only revoke or regenerate itself; use the account's username "
    "and password for other keys."
)
TWO_KEYS = "Name one key: api_key and key_id point to different keys."
NOT_YOURS = "Invalid API key."  # same sentence as an unknown key: never reveal other accounts


@dataclass(frozen=True)
class Proof:
    """Who is asking: the account, and the key sent with the request (None if none was)."""

    account_id: int
    key_id: str | None
    by_password: bool


def prove(service, req: falcon.Request, params: dict) -> Proof:
    """Check the password and/or key of a revoke/regenerate request."""
    raw = raw_api_key(req, params)
    credentials = account_credentials(req, params)
    if credentials is not None:
        account = service.authenticate(*credentials, address=req.remote_addr)
        if raw is None:
            return Proof(account.id, None, True)
        key = service.verify_key(raw)
        if key.account_id != account.id:
            raise Unauthorized(NOT_YOURS)
        return Proof(account.id, key.key_id, True)
    if raw is None:
        raise Unauthorized(help=NEEDS_PROOF)
    key = service.verify_key(raw)
    return Proof(key.account_id, key.key_id, False)


def target(proof: Proof, key_id: str | None) -> str | None:
    """The key to revoke (None = all of the account's), refusing what the proof can't do."""
    if proof.key_id is not None:
        if key_id and key_id != proof.key_id:
            raise InvalidInput(ONLY_ITSELF if not proof.by_password else TWO_KEYS, field="key_id")
        return proof.key_id
    return key_id


def iso_utc(moment: datetime) -> str:
    """``2025-03-01T12:00:00Z`` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def render_key(resp: falcon.Response, new_key) -> None:
    resp.status = falcon.HTTP_201
    resp.media = {
        "api_key": new_key.api_key,
        "key_id": new_key.key_id,
        "expires_at": iso_utc(new_key.expires_at),
    }


class _KeyResource:
    def __init__(self, service, max_body_bytes: int) -> None:
        self._service = service
        self._max_body_bytes = max_body_bytes

    def _params(self, req: falcon.Request) -> dict:
        return request_params(req, self._max_body_bytes)


class GenerateKey(_KeyResource):
    """``POST /api/generate-key`` -> ``201 {"api_key", "key_id", "expires_at"}``."""

    _schema = GenerateKeyParams()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = self._params(req)
        credentials = account_credentials(req, params)
        if credentials is None:
            raise Unauthorized(help=NEEDS_PASSWORD)
        account = self._service.authenticate(*credentials, address=req.remote_addr)
        args = load(self._schema, params)
        render_key(resp, self._service.generate_key(account.id, args["expiry_days"]))


class RevokeKey(_KeyResource):
    """``POST /api/revoke-key`` -> ``200 {"revoked": n}``."""

    _schema = RevokeKeyParams()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = self._params(req)
        proof = prove(self._service, req, params)
        args = load(self._schema, params)
        count = self._service.revoke_keys(proof.account_id, target(proof, args.get("key_id")))
        resp.media = {"revoked": count}


class RegenerateKey(_KeyResource):
    """``POST /api/regenerate-key``: revoke as revoke-key, create as generate-key (201)."""

    _schema = RegenerateKeyParams()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = self._params(req)
        proof = prove(self._service, req, params)
        args = load(self._schema, params)
        new_key = self._service.regenerate_key(
            proof.account_id, target(proof, args.get("key_id")), args["expiry_days"]
        )
        render_key(resp, new_key)
