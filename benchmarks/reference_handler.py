"""The original deployment's serving path, for side-by-side measurement only: torch + sklearn + pickles.

Same events and response contract as ``lambda/handler.py``; the model comes from ``deployment_models/<version>``
through ``convert.reference`` (scaler.transform -> encoder under no_grad -> predict_proba). Never shipped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

# isort: off
import numpy as np
from convert.reference import load_reference  # convert first: it pins torch's kernels
import torch
# isort: on

# The repository, or the reference image's /var/task (REFERENCE_ROOT), which holds deployment_models/.
REPO_ROOT = Path(os.environ.get("REFERENCE_ROOT") or Path(__file__).resolve().parent.parent)

torch.set_num_threads(int(os.environ.get("REFERENCE_TORCH_THREADS", "1")))
MODEL = load_reference(REPO_ROOT / "deployment_models" / os.environ.get("MODEL_VERSION", "v1.0"))
NAMES = MODEL.feature_names
STATS = MODEL.metadata["feature_stats"]
LOW = np.array([STATS[n]["min"] for n in NAMES])
HIGH = np.array([STATS[n]["max"] for n in NAMES])
THRESHOLD = MODEL.threshold
PERFORMANCE = {k: MODEL.metadata["metrics"][k] for k in ("f1_score", "roc_auc", "accuracy")}


def lambda_handler(event, context=None):
    started = time.perf_counter()
    payload = json.loads(event["body"]) if "body" in event else event
    features = payload["features"]
    row = [features[n] for n in NAMES] if isinstance(features, dict) else features
    X = np.array([row], dtype=np.float64)
    out = MODEL.predict(X)
    p = float(out["probability"][0])
    room = (p - THRESHOLD) / (1 - THRESHOLD) if p >= THRESHOLD else (THRESHOLD - p) / THRESHOLD
    body = {
        "prediction": {
            "class": "defect" if out["label"][0] else "normal",
            "probability": p,
            "confidence": "high" if room >= 0.6 else "medium" if room >= 0.3 else "low",
        },
        "latent_features": out["latent"][0].tolist(),
        "attention_weights": dict(zip(NAMES, out["attention"][0].tolist(), strict=True)),
        "model_version": MODEL.metadata["model_version"],
        "model_performance": PERFORMANCE,
        "warnings": [
            {"feature": NAMES[j], "value": float(X[0, j])} for j in np.flatnonzero((X[0] < LOW) | (X[0] > HIGH))
        ],
        "processing_time_ms": round((time.perf_counter() - started) * 1e3, 3),
    }
    if "body" in event:
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
    return body
