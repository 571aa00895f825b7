"""API Gateway (REST payload 1.0, HTTP API payload 2.0) and Function URL events -> a checked HTTP request, and an
answer or an error -> the response. Everything here is HTTP: the runtime library knows none of it.

Rules, decided and tested:

- routes are exactly the resources the SAM template declares for the function (``ROUTES``: ``POST /predict`` and
  ``GET /health``; ``EXPLAIN_ROUTES``: ``POST /explain`` and ``GET /importance``), optionally behind the request's
  stage prefix (``/prod/predict`` when ``requestContext.stage`` is ``prod``); nothing broader
  (``/admin/predict`` and ``/health/../predict`` are 404);
- ``requestContext`` must be an object, the method and path strings; anything else is a 400, not a crash;
- the body limit counts UTF-8 bytes; a base64 body may be up to ``4 * ceil(limit / 3)`` characters, and its
  decoded bytes must fit the limit, so a 1 MiB payload passes either way;
- ``isBase64Encoded`` must be a boolean when present (``"false"`` is a 400, never read as true);
- a ``Content-Type`` other than JSON (``application/json`` or ``application/*+json``, any parameters) is a 415;
  no header at all is accepted, as the recorded events have none;
- duplicate keys in the JSON body: the last one wins (orjson, like most parsers);
- client text that reaches a message is made printable first (lone surrogates, control characters);
- the runtime's errors carry no status: ``status_of`` maps each to one (413, 422, 400; anything else 500).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from runtime.exceptions import (
    InputValidationError,
    NonFiniteOutputError,
    OutOfEnvelopeError,
    PayloadTooLargeError,
)

Routes = dict[str, str]  # resource -> its one method
ROUTES: Routes = {"/predict": "POST", "/health": "GET"}  # the predict function's (T1)
EXPLAIN_ROUTES: Routes = {"/explain": "POST", "/importance": "GET"}  # the explain function's (T2)
MAX_SHOWN = 80  # characters of client text quoted in a message


class HttpError(Exception):
    """An HTTP-level rejection (no route, wrong method, media type) with its status and error type."""

    status = 400
    error_type = "BadRequest"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[dict] = []


class RouteNotFoundError(HttpError):
    status, error_type = 404, "NotFound"


class MethodNotAllowedError(HttpError):
    status, error_type = 405, "MethodNotAllowed"


class UnsupportedMediaTypeError(HttpError):
    status, error_type = 415, "UnsupportedMediaType"


@dataclass(frozen=True)
class Request:
    route: str  # one of the function's routes ("/predict", "/health", ...)
    payload: object  # the parsed JSON body (None for /health)


def printable(value: object, limit: int = MAX_SHOWN) -> str:
    """Client text made safe to quote: cut to ``limit``, non-printable characters escaped (valid UTF-8)."""
    text = value if isinstance(value, str) else type(value).__name__
    text = text[:limit]
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _bad(field: str, message: str) -> InputValidationError:
    return InputValidationError(message, [{"row": None, "field": field, "reason": message}])


def is_proxy(event: object) -> bool:
    return isinstance(event, dict) and ("requestContext" in event or "httpMethod" in event or "rawPath" in event)


def _method_path_stage(event: dict) -> tuple[str, str, str]:
    context = event.get("requestContext")
    if context is not None and not isinstance(context, dict):
        raise _bad("requestContext", f"'requestContext' must be an object, got {printable(context)}")
    context = context or {}
    http = context.get("http")
    if http is not None and not isinstance(http, dict):
        raise _bad("requestContext.http", "'requestContext.http' must be an object")
    if http:  # payload 2.0 and Function URLs
        method, path = http.get("method"), event.get("rawPath", http.get("path"))
    else:
        method, path = event.get("httpMethod"), event.get("path")
    if not isinstance(method, str):
        raise _bad("httpMethod", "the HTTP method must be a string")
    if not isinstance(path, str):
        raise _bad("path", "the request path must be a string")
    stage = context.get("stage")
    return method.upper(), path, stage if isinstance(stage, str) else ""


def route_of(method: str, path: str, stage: str, routes: Routes = ROUTES) -> str:
    """The declared resource of ``routes`` for ``path`` (a stage prefix allowed), checked against the method."""
    route = path
    if stage and path.startswith(f"/{stage}/"):
        route = path[len(stage) + 1 :]
    if route not in routes:
        given = f"{printable(method)} {printable(path)}"
        use = " or ".join(f"{m} {r}" for r, m in routes.items())
        raise RouteNotFoundError(f"no route for {given}; use {use}")
    if method != routes[route]:
        raise MethodNotAllowedError(f"{printable(method)} {route}: {route} answers {routes[route]}")
    return route


def _content_type(event: dict) -> str | None:
    headers = event.get("headers")
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == "content-type":
            return value if isinstance(value, str) else ""
    return None


def _check_json_media_type(event: dict) -> None:
    given = _content_type(event)
    if given is None:
        return
    media = given.split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise UnsupportedMediaTypeError(f"Content-Type {printable(given)!r}: send application/json")


def body_bytes(event: dict, limit: int, route: str = "/predict") -> bytes | str:
    """The body as text or decoded bytes, within ``limit`` UTF-8 bytes; 400/413 otherwise."""
    body = event.get("body")
    if body is None:
        raise _bad("body", f"POST {route} needs a JSON body")
    if not isinstance(body, str):
        raise _bad("body", "the request body must be a string")
    encoded = event.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise _bad("isBase64Encoded", f"'isBase64Encoded' must be true or false, got {printable(encoded)}")
    if encoded:
        if len(body) > 4 * -(-limit // 3):
            raise _too_large(limit, f"{len(body)} base64 characters")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise _bad("body", "the request body is marked base64 but does not decode") from None
        if len(raw) > limit:
            raise _too_large(limit, f"{len(raw)} bytes")
        return raw
    # A character is 1..4 UTF-8 bytes: count exactly only when the length alone cannot decide.
    if len(body) > limit or (4 * len(body) > limit and len(body.encode("utf-8", "surrogatepass")) > limit):
        raise _too_large(limit, "over the limit")
    return body


def _too_large(limit: int, what: str) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the request body is over {limit} bytes; send fewer rows per request",
        [{"row": None, "field": "body", "reason": what}],
    )


def parse_json(text: str | bytes) -> object:
    """Strict RFC 8259 JSON (orjson): NaN/Infinity literals and nesting past 1024 levels are rejected."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        reason = printable(str(exc), 200)
        raise _bad("body", f"the request body is not valid JSON: {reason}") from None


def request_of(event: dict, limit: int, routes: Routes = ROUTES) -> Request:
    """A proxy event -> the route of ``routes`` and its parsed body (None for a GET). Raises ``HttpError`` or
    ``InputValidationError``."""
    method, path, stage = _method_path_stage(event)
    route = route_of(method, path, stage, routes)
    if routes[route] == "GET":
        return Request(route, None)
    _check_json_media_type(event)
    return Request(route, parse_json(body_bytes(event, limit, route)))


# Exception type -> (HTTP status, error type), most specific first; an HttpError carries its own.
_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (PayloadTooLargeError, 413, "PayloadTooLarge"),
    (OutOfEnvelopeError, 422, "ReadingOutOfEnvelope"),
    (NonFiniteOutputError, 422, "NonFiniteOutput"),
    (InputValidationError, 400, "InvalidInput"),
)
HEADERS = {"Content-Type": "application/json"}


def status_of(exc: Exception) -> tuple[int, str]:
    """(HTTP status, error type) for an exception raised while answering; 500 for anything unexpected."""
    if isinstance(exc, HttpError):
        return exc.status, exc.error_type
    for kind, status, error_type in _STATUS:
        if isinstance(exc, kind):
            return status, error_type
    return 500, "InternalError"


def error_body(error_type: str, message: str, details: list[dict], request_id: str) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message, "details": details, "request_id": request_id}}


def respond(proxy: bool, status: int, body: dict[str, Any], request_id: str) -> dict[str, Any]:
    """A proxy response (status, headers, JSON body) or, for a direct invocation, the object itself (with
    ``statusCode`` on errors)."""
    if proxy:
        return {"statusCode": status, "headers": {**HEADERS, "X-Request-Id": request_id}, "body": dumps(body)}
    if status != 200:
        body["statusCode"] = status
    return body


def dumps(body: dict[str, Any]) -> str:
    """The response body as JSON text; never raises (client text that reached a message is escaped if need be)."""
    try:
        return orjson.dumps(body).decode()
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(_printable_tree(body)).decode()


def _printable_tree(value: Any, depth: int = 0) -> Any:
    """A copy of a response fragment whose strings are valid, printable UTF-8 (for the rare client text)."""
    if depth > 20:
        return "..."
    if isinstance(value, str):
        return printable(value, 1000)
    if isinstance(value, dict):
        return {printable(str(k), 200): _printable_tree(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable_tree(v, depth + 1) for v in value]
    return value
