"""The comparison's two outputs: ``compare.json`` (for a pipeline) and a self-contained ``report.html`` (for a
person): verdict and reasons first, then the numbers behind them, then charts embedded as base64 PNGs (ROC
curves, calibration, where the models disagree, recall per defect type)."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from compare import defaults
from evaluation.stats import METRICS, Scores

COLOURS = {"old": "#4c72b0", "new": "#dd8452"}
VERDICT_COLOURS = {"promote": "#2e7d32", "hold": "#b26a00", "reject": "#c62828"}


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, then rename it into place, with the mode any new file gets
    (0644 under the usual umask): mkstemp's 0600 would hide the report from the team that reads it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: put it straight back
    os.umask(mask)
    return mask


def _figure_png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def charts(y: np.ndarray, scores: dict[str, Scores], thresholds: dict[str, float], result: dict) -> dict[str, str]:
    """{title: base64 PNG} for the report."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_curve

    names = {"old": result["old"], "new": result["new"]}
    out = {}
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for key, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s.probability)
        auc = result["models"][result[key]]["roc_auc"]
        ax.plot(fpr, tpr, color=COLOURS[key], label=f"{names[key]} (AUC {auc:.3f})")
        pred = s.label == 1
        ax.plot(pred[y == 0].mean(), pred[y == 1].mean(), "o", color=COLOURS[key], label=f"{names[key]} threshold")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curves")
    ax.legend(loc="lower right", fontsize=8)
    out["ROC curves (dots: each model's operating point at its threshold)"] = _figure_png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4.5))
    for key, s in scores.items():
        frac, mean_p = calibration_curve(y, s.probability, n_bins=10, strategy="quantile")
        ax.plot(mean_p, frac, "o-", color=COLOURS[key], label=names[key])
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    ax.set(xlabel="mean predicted probability (decile bins)", ylabel="observed defect share", title="Calibration")
    ax.legend(loc="upper left", fontsize=8)
    out["Calibration (deciles of each model's probability)"] = _figure_png(fig)
    plt.close(fig)

    out["Where they disagree"] = _disagreement_png(plt, y, scores, thresholds, names, result["mcnemar"])
    by_type = result.get("recall_by_defect_type") or {}
    if by_type:
        out["Recall per defect type (95% CI)"] = _by_type_png(plt, by_type, names)
    return out


def _disagreement_png(plt: Any, y: np.ndarray, scores: dict, thresholds: dict, names: dict, mc: dict) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    old, new = scores["old"].probability, scores["new"].probability
    differ = scores["old"].label != scores["new"].label
    for label, colour, text in ((0, "#4c72b0", "normal part"), (1, "#c62828", "defect")):
        keep = y == label
        ax.scatter(old[keep & ~differ], new[keep & ~differ], s=4, alpha=0.15, color=colour)
        ax.scatter(old[keep & differ], new[keep & differ], s=14, alpha=0.9, color=colour, label=f"{text}, disputed")
    ax.axvline(thresholds["old"], color="grey", lw=0.8)
    ax.axhline(thresholds["new"], color="grey", lw=0.8)
    ax.set(xlabel=f"{names['old']} probability", ylabel=f"{names['new']} probability")
    ax.set_title(f"{differ.sum()} disputed rows: OLD right {mc['b']}, NEW right {mc['c']}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _by_type_png(plt: Any, by_type: dict, names: dict) -> str:
    kinds = sorted(by_type)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(kinds))
    for offset, key in ((-0.2, "old"), (0.2, "new")):
        values = [by_type[k][key]["value"] for k in kinds]
        lows = [v - by_type[k][key]["ci"][0] for v, k in zip(values, kinds, strict=True)]
        highs = [by_type[k][key]["ci"][1] - v for v, k in zip(values, kinds, strict=True)]
        ax.bar(x + offset, values, 0.4, yerr=[lows, highs], color=COLOURS[key], label=names[key], capsize=2)
    labels = [f"{k}\n(n={by_type[k]['defects']}{', few' if by_type[k]['too_few_rows'] else ''})" for k in kinds]
    ax.set_xticks(x, labels, fontsize=7)
    ax.set(ylim=(0, 1.05), ylabel="recall")
    ax.legend(fontsize=8)
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _ci(est: dict, digits: int = 3) -> str:
    lo, hi = est["ci"]
    return f"{est['value']:.{digits}f} <small>[{lo:.{digits}f}, {hi:.{digits}f}]</small>"


def _diff(est: dict) -> str:
    lo, hi = est["ci"]
    marker = " ▲" if lo > 0 else " ▼" if hi < 0 else ""
    return f"{est['value']:+.3f} <small>[{lo:+.3f}, {hi:+.3f}]</small>{marker}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _metrics_section(result: dict) -> str:
    old, new = (result["models"][result[k]] for k in ("old", "new"))
    rows = []
    for m in METRICS:
        o, n = {"value": old[m], "ci": old["ci"][m]}, {"value": new[m], "ci": new["ci"][m]}
        rows.append([m, _ci(o), _ci(n), _diff(result["difference"][m])])
    level = f"{result['bootstrap']['confidence']:.0%}"
    header = ["metric", html.escape(result["old"]), html.escape(result["new"]), "NEW − OLD"]
    note = (
        f"<p class=note>Brackets: {level} percentile intervals from {result['bootstrap']['rounds']} paired bootstrap "
        "resamples of the rows. ▲/▼: NEW significantly higher/lower (interval excludes 0). FPR/FNR: lower is "
        "better.</p>"
    )
    return "<h2>Metrics</h2>" + _table(header, rows) + note


def _by_type_section(result: dict) -> str:
    by_type = result.get("recall_by_defect_type") or {}
    if not by_type:
        return "<p class=note>The data has no defect_type column: no per-type recall.</p>"
    rows = [
        [
            html.escape(k),
            str(v["defects"]) + (" (too few rows)" if v["too_few_rows"] else ""),
            _ci(v["old"]),
            _ci(v["new"]),
            _diff(v["difference"]),
        ]
        for k, v in sorted(by_type.items())
    ]
    header = ["defect type", "defects", html.escape(result["old"]), html.escape(result["new"]), "NEW − OLD"]
    return "<h2>Recall per defect type</h2>" + _table(header, rows)


def _agreement_section(result: dict) -> str:
    mc, agree, lat = result["mcnemar"], result["agreement"], result["latency"]
    return (
        "<h2>Between the models</h2><ul>"
        f"<li>Agreement on the label: {agree:.3f} <small>[{result['agreement_ci'][0]:.3f}, "
        f"{result['agreement_ci'][1]:.3f}]</small> of {result['data']['rows']} rows.</li>"
        f"<li>McNemar's exact test: b = {mc['b']} rows OLD right / NEW wrong, c = {mc['c']} rows OLD wrong / NEW "
        f"right, p = {mc['p_value']:.4g}.</li>"
        f"<li>Single-row latency (medians of {lat['rounds']} interleaved runs): {html.escape(result['old'])} "
        f"{lat['old']['median_us']:.0f} µs (p90 {lat['old']['p90_us']:.0f}), {html.escape(result['new'])} "
        f"{lat['new']['median_us']:.0f} µs (p90 {lat['new']['p90_us']:.0f}); ratio {lat['ratio']['value']:.2f}x "
        f"<small>[{lat['ratio']['ci'][0]:.2f}, {lat['ratio']['ci'][1]:.2f}]</small>.</li></ul>"
    )


def _header(result: dict) -> str:
    verdict = result["verdict"]
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in result["reasons"])
    check_rows = [
        [html.escape(c["name"]), "pass" if c["passed"] else f"<b>fail → {c['on_fail']}</b>", html.escape(c["detail"])]
        for c in result["checks"]
    ]
    return (
        f"<h1>{html.escape(result['old'])} vs {html.escape(result['new'])}</h1>"
        f"<div class=verdict style='background:{VERDICT_COLOURS[verdict]}'>{verdict.upper()}</div>"
        f"<ul class=reasons>{reasons}</ul>"
        + _table(["check", "result", "detail"], check_rows)
        + f"<p class=note>Data: {html.escape(result['data']['source'])}, {result['data']['defects']} defects. "
        f"Held out? {html.escape(result['data']['held_out_note'])}.</p>"
    )


def _models_section(result: dict) -> str:
    rows = [
        [
            html.escape(v),
            html.escape(m["model"]["model_version"]),
            f"{m['model']['threshold']:.2f}",
            html.escape(m["model"]["path"]),
            m["model"]["model_sha256"][:16] + "…",
        ]
        for v, m in result["models"].items()
    ]
    return "<h2>Models</h2>" + _table(["version", "model_version", "threshold", "folder", "graph sha256"], rows)


STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
.verdict{display:inline-block;color:#fff;font-size:1.6rem;font-weight:bold;padding:.3rem 1rem;border-radius:.3rem}
.note{color:#555;font-size:.9rem}small{color:#666}figure{display:inline-block;margin:.5rem}"""


def html_page(result: dict, images: dict[str, str]) -> str:
    figures = "".join(
        f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{png}'><figcaption>{html.escape(t)}"
        "</figcaption></figure>"
        for t, png in images.items()
    )
    body = (
        _header(result)
        + _metrics_section(result)
        + _by_type_section(result)
        + _agreement_section(result)
        + "<h2>Charts</h2>"
        + figures
        + _models_section(result)
    )
    title = f"compare {html.escape(result['old'])} vs {html.escape(result['new'])}: {result['verdict']}"
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def write(out_dir: Path, result: dict, images: dict[str, str]) -> tuple[Path, Path]:
    """Write ``compare.json`` and ``report.html`` into ``out_dir`` (created), each atomically. Both texts are made
    before either file is written, so a failure leaves the previous pair as it was, never a mix."""
    json_path, html_path = out_dir / defaults.JSON_FILE, out_dir / defaults.HTML_FILE
    json_text, html_text = json.dumps(result, indent=2) + "\n", html_page(result, images)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(json_path, json_text)
    write_atomic(html_path, html_text)
    return json_path, html_path
