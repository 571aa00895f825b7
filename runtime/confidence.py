"""How sure a prediction is, as a band: one rule, shared by the Lambda handler and the batch scorer.

The confidence is the probability's distance from the decision threshold as a share of the room on its side:
``(p - t) / (1 - t)`` for a defect, ``(t - p) / t`` for a normal part; "high" from the manifest's
``confidence_bands["high"]``, "medium" from ``["medium"]``, else "low" (convert.train.CONFIDENCE_BANDS).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def confidence(p: float, threshold: float, high: float, medium: float) -> str:
    """The band ("high", "medium" or "low") of probability ``p`` under ``threshold`` and the two band floors."""
    room = (p - threshold) / (1.0 - threshold) if p >= threshold else (threshold - p) / threshold
    return "high" if room >= high else "medium" if room >= medium else "low"


def confidence_rule(threshold: float, bands: Mapping[str, float]) -> Callable[[float], str]:
    """``confidence`` bound to a model's threshold and its manifest's ``confidence_bands``: p -> band."""
    high, medium = float(bands["high"]), float(bands["medium"])

    def of(p: float) -> str:
        return confidence(p, threshold, high, medium)

    return of
