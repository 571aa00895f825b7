"""One client, two back ends: every answer the page shows is the serving application's own JSON.

- ``Embedded(model_dir)``: the handler in-process (``serving.app.App``), and ``explain.app.App`` for ``/explain``
  when that package is importable and the model folder has its files. Each call is an API Gateway REST proxy
  event, so the page sees exactly what the deployed API would answer.
- ``Deployed(url, region)``: the API Gateway URL from the stack's outputs; every request is signed with SigV4
  (botocore's ``SigV4Auth``) with the credentials botocore finds (environment, profile, the ECS task role), with a
  timeout and retries with backoff on 429 and 5xx.

Both return a ``Reply`` (HTTP status and parsed body) for anything the API answered, and raise ``BackendError``
with a message a person can act on when there is no answer (unreachable, no credentials, access denied).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

PREDICT, EXPLAIN, HEALTH = "/predict", "/explain", "/health"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SERVICE = "execute-api"
API_URL_VAR = "DIECAST_API_URL"  # set: the deployed back end; unset: the embedded one


class BackendError(RuntimeError):
    """No answer from the back end: the message says what failed and what to fix."""


@dataclass(frozen=True)
class Reply:
    """What the API answered: the HTTP ``status`` and the JSON ``body`` (an error body for a status >= 400)."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status < 400

    def error_text(self) -> str:
        """The handler's error message and the fields it names, for the page."""
        error = self.body.get("error")
        if not isinstance(error, dict):
            return f"HTTP {self.status}: {self.body.get('message', self.body)}"
        fields = [d["field"] for d in error.get("details") or [] if isinstance(d, dict) and d.get("field")]
        named = f" (fields: {', '.join(dict.fromkeys(fields))})" if fields else ""
        return f"{error.get('type', 'Error')}: {error.get('message', '')}{named}"


class Client(Protocol):
    """What the page calls. ``explain`` is None when the back end has no ``/explain``; ``explain_note`` says why."""

    description: str
    explain_note: str

    def predict(self, payload: object) -> Reply: ...

    def explain(self, payload: object) -> Reply | None: ...


def proxy_event(method: str, route: str, payload: object | None) -> dict[str, Any]:
    """The API Gateway REST proxy event (payload 1.0) the deployed stage would hand the function."""
    return {
        "resource": route,
        "path": route,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "requestContext": {
            "stage": "prod",
            "resourcePath": route,
            "httpMethod": method,
            "requestId": str(uuid.uuid4()),
        },
        "body": None if payload is None else json.dumps(payload),
        "isBase64Encoded": False,
    }


def reply_of(response: dict[str, Any]) -> Reply:
    """A proxy response (status, headers, JSON text body) -> a ``Reply``."""
    return Reply(int(response["statusCode"]), json.loads(response["body"]))


class Embedded:
    """The serving application in this process, on a model folder (as ``diecast invoke`` builds it)."""

    def __init__(self, model_dir: str) -> None:
        from serving.app import App
        from serving.settings import Settings

        settings = Settings(model_path=model_dir)
        self.app = App(settings, quiet_log=True)
        self.explainer, self.explain_note = _explainer(settings)
        self.description = f"embedded: the handler in this process, model {self.app.model_version}"

    def predict(self, payload: object) -> Reply:
        return reply_of(self.app.handle(proxy_event("POST", PREDICT, payload)))

    def explain(self, payload: object) -> Reply | None:
        if self.explainer is None:
            return None
        return reply_of(self.explainer.handle(proxy_event("POST", EXPLAIN, payload)))


def _explainer(settings: Any) -> tuple[Any, str]:
    """(the explanation application, "") or (None, why explanations are not available)."""
    try:
        from explain.app import App as ExplainApp
    except ImportError:
        return None, "explanations are not available: this installation has no explain package"
    from runtime.exceptions import ModelArtifactError

    try:
        return ExplainApp(settings), ""
    except ModelArtifactError as exc:
        return None, f"explanations are not available for this model: {exc}"


class Deployed:
    """The IAM-authorised API Gateway stage at ``url`` (e.g. ``https://abc.execute-api.eu-west-1.amazonaws.com/prod``),
    every request signed with SigV4 for ``region``."""

    def __init__(
        self,
        url: str,
        region: str,
        credentials: Any = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.25,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise BackendError(f"DIECAST_API_URL {url!r} is not an http(s) URL; give the stack's PredictUrl output")
        if not region:
            raise BackendError("AWS_REGION is not set: SigV4 signs for a region; set it to the API's region")
        self.url, self.region = url.rstrip("/").removesuffix(PREDICT), region  # the stack's PredictUrl works too
        self.credentials = credentials if credentials is not None else _default_credentials()
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.description = f"deployed: {self.url} (SigV4, {region})"
        self.explain_note = ""

    def predict(self, payload: object) -> Reply:
        return self.call("POST", PREDICT, payload)

    def explain(self, payload: object) -> Reply | None:
        reply = self.call("POST", EXPLAIN, payload)
        if reply.status in (403, 404) and "error" not in reply.body:  # API Gateway's answer for a missing route
            self.explain_note = "explanations are not available: this API has no /explain route"
            return None
        return reply

    def call(self, method: str, route: str, payload: object | None) -> Reply:
        """One signed request, retried with exponential backoff on 429 and 5xx; the last answer is returned."""
        body = b"" if payload is None else json.dumps(payload).encode()
        for attempt in range(self.retries + 1):
            status, data = self._send(method, self.url + route, body)
            if status not in RETRY_STATUSES or attempt == self.retries:
                break
            time.sleep(self.backoff_s * 2**attempt)
        return self._reply(status, data, route)

    def _send(self, method: str, url: str, body: bytes) -> tuple[int, bytes]:
        headers = self._signed_headers(method, url, body)
        request = urllib.request.Request(url, data=body or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendError(
                f"cannot reach the API at {self.url}: {reason}; check DIECAST_API_URL (the main stack's PredictUrl "
                "output) and that this network can reach it"
            ) from None

    def _signed_headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(self.credentials, SERVICE, self.region).add_auth(request)
        return dict(request.headers.items())

    def _reply(self, status: int, data: bytes, route: str) -> Reply:
        try:
            body = json.loads(data) if data else {}
        except ValueError:
            body = {"message": data[:200].decode("utf-8", "replace")}
        if not isinstance(body, dict):
            body = {"message": str(body)[:200]}
        if status == 403 and "error" not in body and route != EXPLAIN:
            raise BackendError(
                f"the API refused these credentials (403: {body.get('message', '')}); the caller needs "
                f"execute-api:Invoke on POST {route} of this API (the UI task role grants it)"
            )
        return Reply(status, body)


def _default_credentials() -> Any:
    """botocore's credential chain: environment, profile, then the container or instance role."""
    import botocore.session

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise BackendError(
            "no AWS credentials found for signing: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, "
            "or run with a role (the ECS task role)"
        )
    return credentials


def region_of(url: str) -> str:
    """``https://abc.execute-api.eu-west-1.amazonaws.com/prod`` -> ``eu-west-1``; "" for another host."""
    host = url.split("://", 1)[-1].split("/", 1)[0]
    parts = host.split(".")
    return parts[2] if len(parts) > 3 and parts[1] == SERVICE else ""


def from_env(environ: Mapping[str, str], model_dir: str) -> Client:
    """``DIECAST_API_URL`` set: the deployed API (region from ``AWS_REGION``, else from the URL); otherwise the
    handler embedded on ``model_dir``."""
    url = environ.get(API_URL_VAR, "").strip()
    if not url:
        return Embedded(model_dir)
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or region_of(url)
    return Deployed(url, region)
