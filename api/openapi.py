"""The OpenAPI 3 document, built by apispec from the same marshmallow schemas that validate.

Every operation lists its parameters, every answer it can give (with the error body) and the
headers every answer carries; decisions the contract leaves open are written in the text.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from api import schemas as s
from api.openapi_callbacks import (
    MessageEvent,
    MessageEventData,
    inbound_callbacks,
    message_callbacks,
)
from api.openapi_text import API_DESCRIPTION, OPERATION_TEXT
from api.resources import batches, health, inbound, listing, messages
from api.resources.docs import ASSETS
from bridge.accept.send import IDEMPOTENCY_KEY_MAX

BODY_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
ERROR_TEXT = {
    400: "Bad input; `field` names the parameter (`invalid_numbers` lists bad numbers).",
    401: "Missing or wrong credentials or API key; `error` says which.",
    402: 'The balance does not cover the whole request: `{"error": "Insufficient balance."}`;'
    " nothing was queued or charged.",
    413: "The request body is larger than the configured limit (1 MiB by default), seen from"
    " Content-Length or the chunk sizes before the body is read.",
    414: "The request line (path and query) is over 8190 bytes. Send long recipient lists with"
    " POST.",
    415: "The body's Content-Type is not JSON, form-urlencoded or multipart/form-data.",
    429: "Too many requests in this window; retry after `Retry-After` seconds.",
    503: "The database is unreachable; nothing was charged, retry shortly.",
}
# The password endpoints' own texts: the failed-login throttle and the bounded hashing.
PASSWORD_TEXT = {
    429: "Too many failed logins (for this username from this address, or from this address);"
    " `help` says which. Retry after `Retry-After` seconds with the right password, or use an"
    " API key.",
    503: "The database is unreachable, or password checks are saturated (`help` says so, with"
    " `Retry-After: 1`); nothing was charged, retry shortly.",
}
# The send endpoints' 400 names the contract's answer to a bad number.
SEND_TEXT = {
    400: "Bad input; `field` names the parameter. Any number that is not a valid mobile number:"
    ' `{"error": "Invalid phone number format.", "invalid_numbers": [...]}` (the entries as'
    " sent); nothing was queued or charged.",
}
SEND_ERRORS = (400, 401, 402, 413, 415, 503)
KEY_ERRORS = (400, 401, 413, 415, 503)
API_KEY_SECURITY: list[dict[str, list[str]]] = [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}]


def build_spec() -> dict[str, Any]:
    """The whole document as a dict (served as ``/api/v2/openapi.json``)."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="smpp-bridge SMS API",
        version="2.0.0",
        openapi_version="3.0.3",
        plugins=[plugin],
        info={"description": API_DESCRIPTION},
    )
    assert plugin.converter is not None  # APISpec(plugins=[plugin]) initialised it
    plugin.converter.add_attribute_function(s.numbers_property)
    _components(spec)
    _send_paths(spec)
    spec.path(
        path="/api/v2/account/balance",
        operations={
            "get": _op(
                "balance",
                v2=True,
                security=API_KEY_SECURITY,
                ok=(200, "The key's account balance.", s.BalanceAnswer),
                errors=(401, 503),
            )
        },
    )
    _key_paths(spec)
    messages.document(spec, _headers, ERROR_TEXT, API_KEY_SECURITY)  # GET /api/v2/sms/{id}
    listing.document(spec, _headers, ERROR_TEXT, API_KEY_SECURITY)  # GET /api/v2/sms
    batches.document(spec, _headers, ERROR_TEXT, API_KEY_SECURITY)  # GET /api/v2/batches/{id}
    # inbox and opt-outs; the inbox's callback (the inbound webhook) names InboundEvent
    inbound.document(spec, _headers, ERROR_TEXT, API_KEY_SECURITY, inbound_callbacks())
    health.document(spec, _headers)  # /api/v2/status, /healthz, /readyz
    _doc_paths(spec)
    return spec.to_dict()


def _components(spec: APISpec) -> None:
    for name, schema in (
        ("Error", s.ErrorAnswer),
        ("Message", s.MessageAnswer),
        ("SendAnswer", s.SendAnswer),
        ("BalanceAnswer", s.BalanceAnswer),
        ("KeyAnswer", s.KeyAnswer),
        ("RevokeAnswer", s.RevokeAnswer),
        ("SendParams", s.SendParams),
        ("LegacySendParams", s.LegacySendParams),
        ("GenerateKeyParams", s.GenerateKeyParams),
        ("RevokeKeyParams", s.RevokeKeyParams),
        ("RegenerateKeyParams", s.RegenerateKeyParams),
        ("MessageEventData", MessageEventData),  # before the event that nests it
        ("MessageEvent", MessageEvent),
    ):
        spec.components.schema(name, schema=schema)
    spec.components.security_scheme(
        "ApiKeyHeader", {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    )
    spec.components.security_scheme(
        "ApiKeyQuery", {"type": "apiKey", "in": "query", "name": "api_key"}
    )
    spec.components.security_scheme("AccountBasic", {"type": "http", "scheme": "basic"})
    for name, description, header_schema in _HEADERS:
        spec.components.header(
            name, {"description": description, "schema": header_schema, "required": True}
        )


_HEADERS = (
    ("AllowOrigin", "Always `*`.", {"type": "string", "enum": ["*"]}),
    ("CacheControl", "Always `no-cache, private`.", {"type": "string"}),
    ("RateLimitLimit", "Requests allowed per minute in this bucket.", {"type": "integer"}),
    ("RateLimitRemaining", "Requests left in the current window.", {"type": "integer"}),
    ("RetryAfter", "Seconds until the window ends.", {"type": "integer"}),
)


def _headers(v2: bool, status: int) -> dict[str, Any]:
    names = {"access-control-allow-origin": "AllowOrigin", "cache-control": "CacheControl"}
    if v2:
        names |= {
            "x-ratelimit-limit": "RateLimitLimit",
            "x-ratelimit-remaining": "RateLimitRemaining",
        }
    if status == 429:
        names["retry-after"] = "RetryAfter"
    return {header: {"$ref": f"#/components/headers/{ref}"} for header, ref in names.items()}


def _json(schema: Any) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _op(
    name: str,
    *,
    v2: bool,
    ok: tuple[int, str, Any],
    errors: tuple[int, ...],
    security: list | None = None,
    body: Any = None,
    query: Any = None,
    extra_params: list | None = None,
    ok_headers: dict | None = None,
    password: bool = False,
    texts: dict[int, str] | None = None,
    callbacks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One operation: summary/description from openapi_text, answers with their headers.
    ``password``: it takes the account's password, so it has the failed-login 429 too;
    ``texts``: the operation's own answer texts, over ERROR_TEXT; ``callbacks``: the webhooks
    it leads to."""
    summary, description = OPERATION_TEXT[name]
    status, text, schema = ok
    responses: dict[Any, Any] = {
        status: {
            "description": text,
            "content": _json(schema),
            "headers": _headers(v2, status) | (ok_headers or {}),
        }
    }
    described = ERROR_TEXT | (texts or {}) | (PASSWORD_TEXT if password else {})
    for code in (*errors, *((429,) if v2 or password else ())):
        responses[code] = {
            "description": described[code],
            "content": _json(s.ErrorAnswer),
            "headers": _headers(v2, code),
        }
    op: dict[str, Any] = {
        "summary": summary,
        "description": description,
        "responses": responses,
        "operationId": name,
    }
    params = list(extra_params or [])
    if query is not None:
        params.append({"in": "query", "schema": query})
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {
            "required": False,
            "content": {kind: {"schema": body} for kind in BODY_TYPES},
        }
    if security is not None:
        op["security"] = security
    if callbacks is not None:
        op["callbacks"] = callbacks
    return op


IDEMPOTENCY_PARAM = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
    "description": "Same key and same parameters within 24 h: the first answer "
    "is returned again and nothing is sent twice.",
}
REPLAYED_HEADER = {
    "idempotent-replayed": {
        "description": "`true` when this is the stored answer of an earlier request.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def _send_paths(spec: APISpec) -> None:
    common: dict[str, Any] = {
        "v2": True,
        "security": API_KEY_SECURITY,
        "errors": SEND_ERRORS,
        "ok": (200, "Accepted: charged and queued.", s.SendAnswer),
        "extra_params": [IDEMPOTENCY_PARAM],
        "ok_headers": REPLAYED_HEADER,
        "texts": SEND_TEXT,
    }
    spec.path(
        path="/api/v2/sms/send",
        operations={
            # the api_key query parameter is the ApiKeyQuery security scheme, not listed twice
            "get": _op(
                "send_v2_get",
                query=s.SendParams(exclude=("api_key",)),
                callbacks=message_callbacks("{$request.query.callback_url}"),
                **{**common, "errors": (*SEND_ERRORS, 414)},
            ),
            "post": _op(
                "send_v2_post",
                body=s.SendParams,
                callbacks=message_callbacks("{$request.body#/callback_url}"),
                **common,
            ),
        },
    )
    spec.path(
        path="/v1/sms/send",
        operations={
            "post": _op(
                "send_v1",
                v2=False,
                password=True,
                body=s.LegacySendParams,
                errors=SEND_ERRORS,
                texts=SEND_TEXT,
                security=[{}],
                ok=(200, "Accepted: charged and queued.", s.SendAnswer),
                extra_params=[IDEMPOTENCY_PARAM],
                ok_headers=REPLAYED_HEADER,
            )
        },
    )


def _key_paths(spec: APISpec) -> None:
    password: list[dict[str, list[str]]] = [{}, {"AccountBasic": []}]
    created = (201, "The new key; `api_key` is shown only now.", s.KeyAnswer)
    spec.path(
        path="/api/generate-key",
        operations={
            "post": _op(
                "generate_key",
                v2=False,
                password=True,
                body=s.GenerateKeyParams,
                ok=created,
                errors=KEY_ERRORS,
                security=password,
            )
        },
    )
    spec.path(
        path="/api/revoke-key",
        operations={
            "post": _op(
                "revoke_key",
                v2=False,
                password=True,
                body=s.RevokeKeyParams,
                errors=KEY_ERRORS,
                ok=(200, "How many keys were revoked now.", s.RevokeAnswer),
                security=password + API_KEY_SECURITY,
            )
        },
    )
    spec.path(
        path="/api/regenerate-key",
        operations={
            "post": _op(
                "regenerate_key",
                v2=False,
                password=True,
                body=s.RegenerateKeyParams,
                ok=created,
                errors=KEY_ERRORS,
                security=password + API_KEY_SECURITY,
            )
        },
    )


def _page(
    name: str,
    v2: bool,
    content: dict[str, Any],
    errors: dict | None = None,
    params: list | None = None,
) -> dict[str, Any]:
    summary, description = OPERATION_TEXT[name]
    responses: dict[Any, Any] = {
        200: {"description": summary, "content": content, "headers": _headers(v2, 200)}
    }
    responses.update(errors or {})
    op = {
        "summary": summary,
        "description": description,
        "operationId": name,
        "responses": responses,
        "security": [{}],
    }
    if params:
        op["parameters"] = params
    return op


def _doc_paths(spec: APISpec) -> None:
    html = {"text/html": {"schema": {"type": "string"}}}
    document = _json({"type": "object"})
    files = {
        kind: {"schema": {"type": "string", "format": "binary"}}
        for kind in ("application/javascript", "text/css", "image/png")
    }
    missing = {
        404: {
            "description": "No such asset.",
            "content": _json(s.ErrorAnswer),
            "headers": _headers(True, 404),
        }
    }
    asset = [
        {
            "in": "path",
            "name": "name",
            "required": True,
            "description": "A file name.",
            "schema": {"type": "string", "enum": sorted(ASSETS)},
        }
    ]
    spec.path(path="/api/v2", operations={"get": _page("swagger_ui", True, html)})
    spec.path(path="/api/v2/openapi.json", operations={"get": _page("openapi", True, document)})
    spec.path(
        path="/api/v2/assets/{name}",
        operations={"get": _page("asset", True, files, missing, asset)},
    )
    spec.path(
        path="/api/oauth2-callback", operations={"get": _page("oauth2_callback", False, html)}
    )
    spec.path(
        path="/api/oauth2-redirect.js",
        operations={
            "get": _page(
                "oauth2_script", False, {"application/javascript": {"schema": {"type": "string"}}}
            )
        },
    )
