"""The scheduled monitor job on AWS: a Lambda handler in its own image (``docker/monitor.Dockerfile``), never the
serving image.

Environment: ``CAPTURE_URL`` (``s3://bucket/captures/``, Firehose's ``YYYY/MM/DD/HH/`` layout below it),
``LABELS_URL`` (``s3://bucket/labels/labels.csv``), ``REPORT_URL`` (``s3://bucket/reports/``), ``MODEL_DIR`` (the
served version's folder, baked into the image), ``LOOKBACK_DAYS`` (default 56: the current window and seven before
it), ``WINDOW`` (default 7d), ``ALERT_TOPIC_ARN`` (optional: SNS notice when the decision is not ``ok``),
``AB_VERSION`` (optional: the second version of an A/B split, the version part of the function's ``AB_SPLIT``).

It reads the days it needs, runs ``diecast monitor``, prints the EMF line (CloudWatch turns it into
``ModelF1`` and friends, and the F1 alarm acts on it), uploads the report under ``REPORT_URL/<as-of date>/`` and
returns the decision.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path


def _split(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def day_prefixes(capture_url: str, today: datetime, days: int) -> list[str]:
    """``s3://bucket/captures/YYYY/MM/DD/`` for each of the last ``days`` days, oldest first."""
    base = capture_url.rstrip("/") + "/"
    return [f"{base}{today - timedelta(days=d):%Y/%m/%d}/" for d in range(days - 1, -1, -1)]


def _existing(client, urls: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for url in urls:
        bucket, prefix = _split(url)
        if client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0):
            out.append(url)
    return out


def monitor_argv(captures: list[str], labels: Path, out: Path) -> list[str]:
    """``diecast monitor``'s arguments for the job, from its environment."""
    argv = [
        "--captures",
        *captures,
        "--labels",
        str(labels),
        "--model",
        os.environ["MODEL_DIR"],
        "--out",
        str(out),
        "--window",
        os.environ.get("WINDOW", "7d"),
        "--as-of",
        "now",
        "--emf-stdout",
        "--no-progress",
    ]
    ab_version = os.environ.get("AB_VERSION", "")
    return [*argv, "--ab-version", ab_version] if ab_version else argv


def handler(event: dict, context: object) -> dict:
    import boto3

    from diecast import exits
    from diecast.cli import main

    s3 = boto3.client("s3")
    now = datetime.now(UTC)
    captures = _existing(s3, day_prefixes(os.environ["CAPTURE_URL"], now, int(os.environ.get("LOOKBACK_DAYS", "56"))))
    if not captures:
        print(f"no captures under {os.environ['CAPTURE_URL']} in the lookback; nothing to monitor")
        return {"decision": None, "exit_code": exits.USAGE}
    with tempfile.TemporaryDirectory() as tmp:
        labels = Path(tmp) / "labels.csv"
        s3.download_file(*_split(os.environ["LABELS_URL"]), str(labels))
        out = Path(tmp) / "report"
        argv = monitor_argv(captures, labels, out)
        code = main(["monitor", *argv])
        bucket, prefix = _split(os.environ["REPORT_URL"].rstrip("/") + f"/{now:%Y-%m-%d}/")
        decision = None
        for item in sorted(out.glob("*")) if out.exists() else []:
            s3.upload_file(str(item), bucket, prefix + item.name)
            if item.name == "report.json":
                import json

                decision = json.loads(item.read_text())["decision"]
    topic = os.environ.get("ALERT_TOPIC_ARN")
    if topic and decision in ("retrain", "rollback"):
        boto3.client("sns").publish(
            TopicArn=topic,
            Subject=f"diecast-t1 monitor: {decision}",
            Message=f"The monitor decided {decision!r} (exit {code}). Report: s3://{bucket}/{prefix}report.html",
        )
    return {"decision": decision, "exit_code": code, "report": f"s3://{bucket}/{prefix}report.html"}
