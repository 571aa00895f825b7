"""Build the slim Lambda image on a local base and invoke it through a Lambda Runtime API server; measure it
against the torch + sklearn image. Run as root on a Debian machine: `make image-test`.

Steps: debootstrap base -> stand-in for AWS's Python base (python3 + awslambdaric, AWS's task-root layout and
entrypoint) -> the production Dockerfile on top (--build-arg BASE_IMAGE) -> a container per scenario, talking to
a small server of the documented Runtime API (2018-06-01) on loopback:

- a valid API Gateway event gets the contract's 200 response;
- a bad direct event gets the 400 error object;
- a broken model folder makes the container report an init error;
- every row of the embedded dataset, sent in batches, gets from the image exactly the answers (probability,
  label, latents, attention) that the host's runtime gives, for each shipped version: the image's trimmed
  numpy and onnxruntime compute what the full packages compute;
- cold start: `docker run` -> first response, median of --runs, for the slim and the reference image;
- sizes: each image, and what its Dockerfile adds over the shared base.

Writes build/image/summary.json (read by `make bench`'s table) and exits non-zero on any failed check.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEBIAN_BASE = "diecast/debian-minbase:bookworm"
LAMBDA_BASE = "diecast/lambda-python:test"
SLIM = "diecast-t1:test"
REFERENCE = "diecast-t1-reference:test"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SUMMARY = REPO / "build" / "image" / "summary.json"
API = "/2018-06-01/runtime"
# Debian's docker.io client runs BuildKit builds itself; a newer client elsewhere on PATH may insist on buildx.
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


class _QuietServer(ThreadingHTTPServer):
    """A container stopped while its runtime waits on /next resets the connection: expected here, not a traceback
    to print (any other error still is)."""

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class RuntimeAPI:
    """A Lambda Runtime API (2018-06-01) serving queued events and recording what the runtime posts back."""

    def __init__(self, events: list[dict], interval_s: float = 0.0) -> None:
        self.events = list(events)
        self.interval_s = interval_s  # at least this long between handing out two events (0: back to back)
        self._last_handout = 0.0
        self.responses: list[tuple[str, dict]] = []  # (kind, payload) in arrival order: response/error/init_error
        self.durations_ms: list[float] = []  # per invocation: event handed out -> its result received
        self.first_response_at: float | None = None
        self.first_next_epoch: float | None = None  # wall clock of the runtime's first /next: INIT is over
        self.container_started_epoch: float | None = None  # set by run_container from `docker inspect`
        self._handed_out: dict[str, float] = {}
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._expected = len(events)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # without it every call stalls ~40-100 ms (Nagle + delayed ACK)

            def log_message(self, *args):  # quiet
                pass

            def _reply(self, code: int, body: bytes = b"{}", headers: dict | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{API}/invocation/next":
                    return self._reply(404)
                if api.first_next_epoch is None:
                    api.first_next_epoch = time.time()
                with api._lock:
                    event = api.events.pop(0) if api.events else None
                if event is None:
                    api.done.wait(120)  # nothing left: hold the runtime here until the test stops it
                    return self._reply(410)
                request_id = str(uuid.uuid4())
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30_000),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-1:000000000000:function:diecast",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                }
                body = json.dumps(event).encode()
                wait = api._last_handout + api.interval_s - time.perf_counter()
                if wait > 0:  # a paced load: the runtime idles between calls as an environment does between requests
                    time.sleep(wait)
                api._last_handout = api._handed_out[request_id] = time.perf_counter()  # Lambda's Duration starts here
                self._reply(200, body, headers)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path.endswith("/response"):
                    kind = "response"
                elif self.path.endswith("/error"):
                    kind = "init_error" if self.path == f"{API}/init/error" else "error"
                else:
                    return self._reply(404)
                try:
                    payload = json.loads(raw or b"null")
                except ValueError:
                    payload = {"raw": raw.decode("utf-8", "replace")}
                received = time.perf_counter()
                with api._lock:
                    if api.first_response_at is None:
                        api.first_response_at = received
                    handed_out = api._handed_out.pop(self.path.split("/")[-2], None)  # .../invocation/<id>/response
                    if handed_out is not None:
                        api.durations_ms.append((received - handed_out) * 1000)
                    api.responses.append((kind, payload))
                    if kind == "init_error" or len(api.responses) >= api._expected:
                        api.done.set()
                self._reply(202)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def init_s(self) -> float | None:
        """Container process start -> the runtime's first /next: the runtime's start and the handler's INIT."""
        if self.first_next_epoch is None or self.container_started_epoch is None:
            return None
        return self.first_next_epoch - self.container_started_epoch

    def close(self) -> None:
        self.done.set()
        self.server.shutdown()
        self.server.server_close()


def sh(*cmd: str, quiet: bool = False, env: dict | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    if not quiet and proc.stdout.strip():
        print(proc.stdout.strip()[-2000:])
    return proc.stdout


def build(tag: str, dockerfile: str, *args: str) -> None:
    started = time.perf_counter()
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    secret = ["--secret", f"id=cacert,src={CA_BUNDLE}"] if Path(CA_BUNDLE).is_file() else []
    sh(DOCKER, "build", "-q", "-f", dockerfile, *secret, *args, "-t", tag, str(REPO), quiet=True, env=env)
    print(f"built {tag} in {time.perf_counter() - started:.0f} s ({image_mb(tag):.0f} MB)")


def image_mb(tag: str) -> float:
    return int(sh(DOCKER, "image", "inspect", "-f", "{{.Size}}", tag, quiet=True).strip()) / 1e6


def build_slim(tag: str = SLIM) -> None:
    """The debootstrap base, the stand-in for AWS's Python base, and the production Dockerfile on top as ``tag``."""
    sh("bash", str(REPO / "docker" / "build-base.sh"), DEBIAN_BASE)
    build(LAMBDA_BASE, "docker/lambda-python.Dockerfile", "--build-arg", f"DEBIAN_BASE={DEBIAN_BASE}")
    build(tag, "Dockerfile", "--build-arg", f"BASE_IMAGE={LAMBDA_BASE}")


def docker_time_epoch(stamp: str) -> float | None:
    """Seconds since the epoch for docker's UTC RFC 3339 time with nanoseconds (``2026-11-26T05:17:11.123456789Z``,
    more digits than ``datetime`` parses); None for anything else, e.g. the zero time of a container not started."""
    seconds, dot, fraction = stamp.strip().removesuffix("Z").partition(".")
    if not dot or not fraction.isdigit():
        return None
    try:
        return datetime.fromisoformat(seconds).replace(tzinfo=UTC).timestamp() + float(f"0.{fraction}")
    except ValueError:
        return None


def _started_epoch(container: str) -> float | None:
    """When the container's process started (docker's State.StartedAt), or None."""
    proc = subprocess.run(
        [DOCKER, "inspect", "-f", "{{.State.StartedAt}}", container], capture_output=True, text=True, check=False
    )
    return docker_time_epoch(proc.stdout) if proc.returncode == 0 else None


def run_container(
    image: str,
    events: list[dict],
    *docker_args: str,
    timeout: float = 120,
    name_prefix: str = "diecast-test",
    interval_s: float = 0.0,
    command: tuple[str, ...] = (),
) -> tuple[RuntimeAPI, float]:
    """Start ``image`` (with ``command`` as its CMD, if given) against a fresh Runtime API; returns the API and
    seconds from `docker run` to the first reply."""
    api = RuntimeAPI(events, interval_s)
    name = f"{name_prefix}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    sh(
        DOCKER, "run", "-d", "--rm", "--name", name, "--network", "host",
        "-e", f"AWS_LAMBDA_RUNTIME_API={api.address}", *docker_args, image, *command, quiet=True,
    )  # fmt: skip
    try:
        if not api.done.wait(timeout):
            logs = subprocess.run([DOCKER, "logs", name], capture_output=True, text=True, check=False)
            raise SystemExit(f"{image}: no answer in {timeout} s\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")
        api.container_started_epoch = _started_epoch(name)
    finally:
        subprocess.run([DOCKER, "kill", name], capture_output=True, check=False)
        api.close()
    assert api.first_response_at is not None
    return api, api.first_response_at - started


def check(condition: bool, what: str, failures: list[str]) -> None:
    print(f"  [{'ok' if condition else 'FAIL'}] {what}")
    if not condition:
        failures.append(what)


def scenario_checks(failures: list[str]) -> None:
    events = REPO / "tests" / "events"
    good = json.loads((events / "rest_predict.json").read_text())
    bad = json.loads((events / "bad_missing_feature.json").read_text())
    api, _ = run_container(SLIM, [good, bad])
    (kind1, resp1), (kind2, resp2) = api.responses
    body = json.loads(resp1.get("body", "{}")) if kind1 == "response" else {}
    check(kind1 == "response" and resp1.get("statusCode") == 200, "valid API Gateway event -> 200", failures)
    check(
        body.get("prediction", {}).get("class") in {"defect", "normal"}
        and len(body.get("latent_features", [])) == 12
        and len(body.get("attention_weights", {})) == 30
        and body.get("model_version") == "v1.0_12D_GB",
        "response carries the contract (prediction, 12 latents, 30 attention weights, model version)",
        failures,
    )
    check(
        kind2 == "response" and resp2.get("statusCode") == 400 and resp2.get("error", {}).get("type") == "InvalidInput",
        "bad direct event -> 400 error object, no exception",
        failures,
    )
    with tempfile.TemporaryDirectory() as tmp:
        broken = Path(tmp) / "v1.0"
        shutil.copytree(REPO / "models_onnx" / "v1.0", broken)
        for graph in broken.glob("*.onnx"):  # model.onnx and onnxruntime's cache alike
            blob = bytearray(graph.read_bytes())
            blob[len(blob) // 2] ^= 0xFF
            graph.write_bytes(bytes(blob))
        os.chmod(tmp, 0o755)
        api, _ = run_container(SLIM, [good], "-v", f"{broken}:/opt/broken:ro", "-e", "MODEL_PATH=/opt/broken")
    kind, payload = api.responses[0]
    check(
        kind == "init_error" and "does not match its manifest" in json.dumps(payload),
        "corrupt model file -> init error naming the sha256 mismatch",
        failures,
    )


def _dataset_rows(names: list[str]) -> list[list[float]]:
    with (REPO / "data" / "die_casting.csv").open(newline="") as f:
        return [[float(row[n]) for n in names] for row in csv.DictReader(f)]


def _answers(response: dict) -> list[tuple]:
    return [
        (p["prediction"]["probability"], p["prediction"]["class"], p["latent_features"], p["attention_weights"])
        for p in response["predictions"]
    ]


def parity_checks(failures: list[str], batch: int = 1000) -> None:
    """The image against the host's runtime, every dataset row, every shipped version."""
    import runtime  # the host's full numpy + onnxruntime (the project is installed: make venv)

    for folder in sorted((REPO / "models_onnx").iterdir()):
        model = runtime.load(folder)
        names = list(model.feature_names)
        rows = _dataset_rows(names)
        chunks = [rows[i : i + batch] for i in range(0, len(rows), batch)]
        api, _ = run_container(
            SLIM, [{"instances": c} for c in chunks], "-e", f"MODEL_PATH=/var/task/models_onnx/{folder.name}"
        )
        got = [a for kind, resp in api.responses if kind == "response" for a in _answers(resp)]
        outs = [model.raw_predict(np.array(c, dtype=np.float64)) for c in chunks]  # as the image batches them
        p, labels, latent, attention = (np.concatenate([o[k] for o in outs]).tolist() for k in range(4))
        want = [
            (p[i], "defect" if labels[i] else "normal", latent[i], dict(zip(names, attention[i], strict=True)))
            for i in range(len(rows))
        ]
        differ = sum(g != w for g, w in zip(got, want, strict=False)) + abs(len(got) - len(want))
        check(
            differ == 0,
            f"{folder.name}: {len(rows)} dataset rows in the image = the host's runtime, bit for bit ({differ} differ)",
            failures,
        )


def cold_starts(image: str, runs: int) -> list[float]:
    event = json.loads((REPO / "tests" / "events" / "rest_predict.json").read_text())
    times = []
    for _ in range(runs):
        api, seconds = run_container(image, [event])
        kind, resp = api.responses[0]
        if kind != "response" or resp.get("statusCode") != 200:
            raise SystemExit(f"{image}: cold-start run answered {kind}: {json.dumps(resp)[:500]}")
        times.append(seconds)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docker/image_test.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold-start runs per image (default: %(default)s)")
    parser.add_argument("--skip-reference", action="store_true", help="do not build or time the torch image")
    args = parser.parse_args(argv)
    failures: list[str] = []
    build_slim(SLIM)
    print("checks through the Runtime API:")
    scenario_checks(failures)
    parity_checks(failures)
    base_mb, slim_mb = image_mb(LAMBDA_BASE), image_mb(SLIM)
    summary: dict = {
        "base_image_mb": round(base_mb, 1),
        "onnx_image_mb": round(slim_mb, 1),
        "onnx_image_added_mb": round(slim_mb - base_mb, 1),
    }
    slim_cold = cold_starts(SLIM, args.runs)
    summary["onnx_image_cold_start_s"] = round(statistics.median(slim_cold), 3)
    summary["onnx_image_cold_start_runs"] = [round(t, 3) for t in slim_cold]
    if not args.skip_reference:
        wheels = REPO / "build" / "image" / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        torch_wheel = next(Path("/opt/wheels").glob("torch-2.13.0*cp311*.whl"), None)
        if torch_wheel is None:
            raise SystemExit("no torch 2.13.0 CPU wheel in /opt/wheels for the reference image")
        if not (wheels / torch_wheel.name).exists():
            shutil.copy(torch_wheel, wheels / torch_wheel.name)
        build(REFERENCE, "docker/reference.Dockerfile", "--build-arg", f"BASE_IMAGE={LAMBDA_BASE}")
        ref_mb = image_mb(REFERENCE)
        ref_cold = cold_starts(REFERENCE, args.runs)
        summary.update(
            {
                "reference_image_mb": round(ref_mb, 1),
                "reference_image_added_mb": round(ref_mb - base_mb, 1),
                "reference_image_cold_start_s": round(statistics.median(ref_cold), 3),
                "reference_image_cold_start_runs": [round(t, 3) for t in ref_cold],
            }
        )
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    if failures:
        print(f"image test FAILED: {len(failures)} check(s): {'; '.join(failures)}")
        return 1
    print("image test passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
