"""A local stand-in for the IAM-authorised API Gateway stage: it recomputes each request's SigV4 signature from the
same fake credentials (the algorithm written out here, independently of botocore) and answers like API Gateway.

A correctly signed ``POST /prod/predict`` is answered by the serving application itself (a REST proxy event), and
``POST /prod/explain`` with an explanation of the response schema the explanation service answers. ``StubApi.plan``
scripts failures: a list of statuses to answer first (429, 503, ...), ``deny`` for a role without
execute-api:Invoke, ``delay_s`` for a slow API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCESS_KEY, SECRET_KEY, REGION, STAGE = "AKIDUITESTFAKE000000", "fake/secret/for/the/stub/only", "eu-west-1", "prod"


@dataclass
class Plan:
    statuses: list[int] = field(default_factory=list)  # answered first, one per request, before any real answer
    deny: bool = False
    delay_s: float = 0.0
    explain: bool = True


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(method: str, path: str, headers: dict[str, str], body: bytes, secret: str) -> str:
    """SigV4 (AWS's documented algorithm) over the headers the Authorization header says were signed."""
    auth = headers["authorization"]
    fields = dict(part.strip().split("=", 1) for part in auth.removeprefix("AWS4-HMAC-SHA256 ").split(","))
    _, date, region, service, _ = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed)
    canonical = "\n".join([method, path, "", canonical_headers, ";".join(signed), hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", headers["x-amz-date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def explanation_of(features: dict[str, float]) -> dict[str, Any]:
    """A fixed, schema-true explanation: contributions that grow with the reading's position in the payload."""
    contributions = {name: (i - 15) / 100 for i, name in enumerate(features)}
    return {"base_value": -1.0, "output": "log_odds", "contributions": contributions}


class StubApi:
    """``with StubApi(app) as api: api.url``; ``api.requests`` records (method, path, signature ok) per request."""

    def __init__(self, app: Any) -> None:
        self.app, self.plan, self.requests = app, Plan(), []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                stub._serve(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{STAGE}"

    def __enter__(self) -> StubApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        signed = "authorization" in headers and hmac.compare_digest(
            headers["authorization"].rsplit("Signature=", 1)[-1],
            expected_signature("POST", handler.path, headers, body, SECRET_KEY),
        )
        self.requests.append((handler.path, signed, headers.get("authorization", "")))
        status, answer = self._answer(handler.path, body, signed, headers)
        time.sleep(self.plan.delay_s)
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, path: str, body: bytes, signed: bool, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not signed:
            return 403, {"message": "The request signature we calculated does not match the signature you provided."}
        if self.plan.deny:
            return 403, {
                "message": "User: arn:aws:sts::123456789012:assumed-role/ui-task/x is not authorized to perform: "
                "execute-api:Invoke on resource: arn:aws:execute-api:eu-west-1:123456789012:abc/prod/POST/predict"
            }
        if self.plan.statuses:
            status = self.plan.statuses.pop(0)
            return status, {"message": "Too Many Requests" if status == 429 else "Service Unavailable"}
        route = path.removeprefix(f"/{STAGE}")
        if route == "/predict":
            response = self.app.handle(_event(body, headers.get("content-type", "")))
            return response["statusCode"], json.loads(response["body"])
        if route == "/explain" and self.plan.explain:
            prediction = json.loads(self.app.handle(_event(body, "application/json"))["body"])
            return 200, {
                "explanation": explanation_of(json.loads(body)["features"]),
                "prediction": prediction["prediction"],
                "model_version": prediction["model_version"],
            }
        return 403, {"message": "Missing Authentication Token"}  # API Gateway's answer for an unknown resource


def _event(body: bytes, content_type: str) -> dict[str, Any]:
    """The REST proxy event API Gateway hands the function for ``POST /prod/predict``."""
    return {
        "httpMethod": "POST",
        "path": f"/{STAGE}/predict",
        "headers": {"Content-Type": content_type},
        "requestContext": {"stage": STAGE},
        "body": body.decode(),
        "isBase64Encoded": False,
    }
