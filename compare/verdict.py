"""The decision: promote, hold or reject NEW, from explicit rules, each reported as a check that passed or not.

Reject (any one): NEW's F1 is below ``min_f1``; NEW is significantly worse than OLD on a guard metric (the
interval of NEW - OLD lies wholly below 0).
Hold (when not rejected, any one): fewer than ``min_positives`` defects in the data; NEW is not shown to be at
least OLD - ``margin`` on the promote metric (the interval's lower bound is not above -margin: with margin 0,
NEW must be significantly better); NEW's median single-row latency is over ``max_latency_ratio`` x OLD's.
Promote: every check passed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from compare import defaults


@dataclass(frozen=True)
class Rules:
    min_f1: float = defaults.MIN_F1
    guard_metrics: tuple[str, ...] = defaults.GUARD_METRICS
    promote_metric: str = defaults.PROMOTE_METRIC
    margin: float = defaults.MARGIN
    max_latency_ratio: float = defaults.MAX_LATENCY_RATIO
    min_positives: int = defaults.MIN_POSITIVES
    confidence: float = defaults.CONFIDENCE

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    on_fail: str  # the verdict this check forces when it fails: "reject" or "hold"
    detail: str


def _interval(ci: list[float]) -> str:
    return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def checks(stats: dict, latency: dict, positives: int, rules: Rules) -> list[Check]:
    """Every rule applied to the comparison's numbers, in the order they are reported."""
    new, diff = stats["new"], stats["difference"]
    level = f"{rules.confidence:.0%} CI"
    f1 = new["f1"]["value"]
    out = [Check("min_f1", f1 >= rules.min_f1, "reject", f"NEW F1 {f1:.3f} (floor {rules.min_f1:.3f})")]
    for metric in rules.guard_metrics:
        d = diff[metric]
        worse = d["ci"][1] < 0
        out.append(
            Check(
                f"not_worse_{metric}",
                not worse,
                "reject",
                f"{metric} NEW - OLD {d['value']:+.3f}, {level} {_interval(d['ci'])}"
                + (": significantly worse" if worse else ": not significantly worse"),
            )
        )
    out.append(
        Check(
            "enough_defects",
            positives >= rules.min_positives,
            "hold",
            f"{positives} defects in the data (need {rules.min_positives} for intervals narrow enough to act on)",
        )
    )
    d = diff[rules.promote_metric]
    shown = d["ci"][0] > -rules.margin
    out.append(
        Check(
            f"better_{rules.promote_metric}",
            shown,
            "hold",
            f"{rules.promote_metric} NEW - OLD {d['value']:+.3f}, {level} {_interval(d['ci'])}: "
            + (
                f"lower bound {'above' if shown else 'not above'} -{rules.margin:.3f} (the margin)"
                if rules.margin
                else "significantly better"
                if shown
                else "not significantly better"
            ),
        )
    )
    ratio = latency["ratio"]["value"]
    out.append(
        Check(
            "latency",
            ratio <= rules.max_latency_ratio,
            "hold",
            f"NEW/OLD median single-row latency {ratio:.2f}x ({latency['old']['median_us']:.0f} vs "
            f"{latency['new']['median_us']:.0f} us; limit {rules.max_latency_ratio:.2f}x)",
        )
    )
    return out


def decide(found: list[Check]) -> tuple[str, list[str]]:
    """(verdict, reasons): the failed checks of the most severe kind, or every check when promoting."""
    for severity in ("reject", "hold"):
        failed = [c.detail for c in found if not c.passed and c.on_fail == severity]
        if failed:
            return severity, failed
    return "promote", [c.detail for c in found]
