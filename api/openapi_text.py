"""The prose of the OpenAPI document: the conventions and every decision the contract left open."""

from __future__ import annotations

API_DESCRIPTION = """\
Send SMS through the bridge: each request is validated, priced, charged and queued; delivery
happens over SMPP afterwards (reports go to `callback_url`).

**Parameters** are read from the query string, an `application/x-www-form-urlencoded` or
`multipart/form-data` body, or a JSON object body; when a name is in both, the body wins. A
parameter given twice becomes a list (only `numbers` accepts one). Every text must be UTF-8
(else 400). Bodies over 1 MiB (`BRIDGE_MAX_BODY_BYTES`) get 413; other body types get 415; a
JSON body that is not an object gets 400. Unknown parameters are ignored. A request line over
8190 bytes gets 414 (send long recipient lists with POST).

**Errors** are always JSON `{"error": "<one sentence>"}`, sometimes with `help`, `field`,
`invalid_numbers` or `retry_after`; never HTML. Unknown paths answer 404 and known paths with
another method 405 (with `Allow`), both as JSON. Status codes: 200, 201, 204 (a CORS
preflight), 400 (never 422), 401, 402, 404, 405, 408, 409, 413, 414, 415, 429, 431, 500, 503.

**Money** is exact: amounts are strings with two or more decimals (`"99.20"`) plus `currency`.

**Numbers** follow libphonenumber with default region KE (`0701234567`, `+254701234567`,
`254701234567` and `0701 234 567` are the same number); only mobile numbers are accepted, any
other entry fails the whole request (400 with `invalid_numbers`, nothing charged). Answers show
E.164. A number repeated in one request is sent once. At most 10,000 recipients per request
(`BRIDGE_MAX_RECIPIENTS`).

**API keys** (`/api/v2`): send `X-API-Key: <key>` or the `api_key` parameter. No key: 401
`{"error": "API key is required", "help": "Provide X-API-Key header or api_key parameter"}`; an
unknown, revoked or expired key, or a disabled account: 401 saying which (`Invalid API key.`,
`API key has been revoked.`, `API key has expired.`, `Account is disabled.`), never which
account.

**Rate limit** (`/api/v2`): 60 requests per minute per API key by default (per account
override), counted in Redis so all API processes share it. A window starts at a bucket's first
request and lasts 60 s. Requests without a valid key (missing, unknown, revoked, expired) are
counted per client address; so is a request whose body cannot be read (400, 415), by its
`X-API-Key` header's key if valid, and one the server refuses before reading it whole (408, 413,
414, 431), by that key only if its header block was read (a 413, the 408 of a slow body). Every
`/api/v2` answer carries `X-RateLimit-Limit` and `X-RateLimit-Remaining` (the 401s and those
refusals too); the documentation pages report the address bucket without counting. Over the
limit: 429 `{"error": "Too many requests.", "retry_after": <s>}` with `Retry-After`. If Redis is
down the limit is not enforced (the headers show the full limit) and sending keeps working.

**Idempotency**: an `Idempotency-Key` header (max 255 characters, on `/api/v2/sms/send` and
`/v1/sms/send`) makes a send safe to retry: the same key with the same parameters within 24 h
returns the first answer again (with `Idempotent-Replayed: true`) and sends and charges nothing.
Keys are per account.

**CORS**: every answer carries `Access-Control-Allow-Origin: *` and
`Cache-Control: no-cache, private`; `OPTIONS` on any path is a preflight answered 204 with
`Access-Control-Allow-Methods: GET, POST, DELETE, OPTIONS` and `Access-Control-Allow-Headers` including
`X-API-Key`, `Idempotency-Key`, `Content-Type` and `Authorization`.
"""

_KEY_PROOF = """\
Proof: the account's `username` and `password` (parameters or HTTP Basic), or a valid API key
(`X-API-Key` header or `api_key` parameter). With a key as proof the request acts on that key
alone; naming another key with `key_id` is refused (400). With the password, the key revoked is
the one sent as `X-API-Key`/`api_key` (it must belong to the account), else the one named by
`key_id`, else every key of the account."""

OPERATION_TEXT: dict[str, tuple[str, str]] = {
    "send_v2_get": (
        "Send SMS (API key, query parameters)",
        "Same as `POST /api/v2/sms/send` with the parameters in the query string.",
    ),
    "send_v2_post": (
        "Send SMS (API key)",
        """\
Validates every number, prices the whole request (parts x price), charges it and queues one
message per distinct recipient, all or nothing. `sender_id` must be one the account may use.
`reference` is echoed back; `callback_url` receives a signed webhook for each message's final
state (and `submitted` with `callback_events=all`).""",
    ),
    "send_v1": (
        "Send SMS (legacy: username and password in the request)",
        """\
The original endpoint: `numbers`, `message_body`, `username`, `password` (HTTP Basic works
too), optional `sender_id`. Wrong or missing credentials: 401 `{"error": "Unauthorized."}`.
Not rate limited; failed logins are throttled (429). Answers exactly like `/api/v2/sms/send`.""",
    ),
    "balance": ("Account balance", "The balance and currency of the key's account."),
    "generate_key": (
        "Create an API key",
        """\
Proof: the account's `username` and `password` (parameters or HTTP Basic); an API key cannot
create keys. `expiry_days` is a whole number 1..365 (default 90); anything else gets 400
`{"error": "expiry_days must be between 1 and 365."}`. The full key is in this answer only; an
account may hold several active keys.""",
    ),
    "revoke_key": (
        "Revoke API keys",
        _KEY_PROOF + '\n\nAnswers `{"revoked": <count>}` (0 when '
        "there was nothing left to revoke).",
    ),
    "regenerate_key": (
        "Rotate an API key",
        _KEY_PROOF
        + """

Revokes as revoke-key does and creates a new key as generate-key does (`expiry_days` likewise),
in one transaction, and answers **201** (a key was created) with the new key.""",
    ),
    "swagger_ui": (
        "This documentation (Swagger UI)",
        "Every asset is served by the bridge itself; no external network access.",
    ),
    "openapi": ("The OpenAPI 3 document", "Generated from the schemas that validate requests."),
    "asset": ("A Swagger UI asset", "Static files of the documentation page."),
    "oauth2_callback": ("Swagger UI OAuth2 redirect page", "HTML that loads oauth2-redirect.js."),
    "oauth2_script": ("Swagger UI OAuth2 redirect script", "Loaded by /api/oauth2-callback."),
}
