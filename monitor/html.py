"""The self-contained HTML report: the decision and its reasons first, then the charts behind them.

Charts are matplotlib PNGs embedded as base64, so the file opens offline. Windows with fewer labels than the
minimum are marked, not plotted: a metric on a handful of labels is noise. Likewise a window with fewer predictions
than the drift minimum shows its PSI without judging it, and warnings (what the decision does not act on) follow the
reasons.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime

import numpy as np

from monitor import constants as C
from runtime.contracts import ROLLBACK_F1

COLOURS = {"ok": "#2e7d32", "retrain": "#ef6c00", "rollback": "#c62828"}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.decision{color:#fff;padding:1em 1.4em;border-radius:6px;font-size:1.3em}
.decision small{display:block;font-size:.7em;opacity:.9}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left}
th{background:#f4f4f4} .fired{color:#c62828;font-weight:600} .quiet{color:#2e7d32} .warning{color:#ef6c00}
.cards{display:flex;flex-wrap:wrap;gap:.8em} .card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em}
.card b{font-size:1.4em;display:block} .muted{color:#777} img{max-width:100%}
code{background:#f4f4f4;padding:0 .2em}
"""


def _esc(value: object) -> str:
    return html.escape(str(value))


def _png(fig) -> str:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _dates(trend: list[dict]) -> list[datetime]:
    return [datetime.fromisoformat(w["end"]) for w in trend]


def _decision(report: dict) -> str:
    d = report["decision"]
    reasons = "".join(f"<li>{_esc(r)}</li>" for r in report["reasons"]) or "<li>no signal fired</li>"
    rows = "".join(
        f"<tr><td>{_esc(name)}</td><td class='{'fired' if t['fired'] else 'quiet'}'>"
        f"{'fired' if t['fired'] else 'quiet'}</td><td>{_esc(t['reason'])}</td></tr>"
        for name, t in report["triggers"].items()
    )
    w = report["window"]
    warned = "".join(f"<li class='warning'>{_esc(r)}</li>" for r in report.get("warnings", []))
    return (
        f"<div class='decision' style='background:{COLOURS[d]}'>Decision: {d.upper()} "
        f"<small>exit code {report['exit_code']} &middot; model {_esc(report['model']['version'])} &middot; "
        f"window {_esc(w['start'][:16])} .. {_esc(w['end'][:16])} ({w['predictions']} predictions, "
        f"{w['labelled']} labelled)</small></div><h2>Why</h2><ul>{reasons}</ul>"
        + (f"<h3>Warnings (not acted on)</h3><ul>{warned}</ul>" if warned else "")
        + f"<table><tr><th>signal</th><th>state</th><th>reason</th></tr>{rows}</table>"
    )


def _confusion_chart(q: dict) -> str:
    import matplotlib.pyplot as plt

    c = q["confusion"]
    grid = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(grid, cmap="Blues")
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > grid.max() / 2 else "black", fontsize=13)
    ax.set_xticks([0, 1], ["normal", "defect"])
    ax.set_yticks([0, 1], ["normal", "defect"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("inspected")
    ax.set_title("Confusion matrix (window)")
    return _png(fig)


def _quality(report: dict, min_labelled: int) -> str:
    q = report["quality"]
    if not q["labelled"]:
        return "<h2>Quality</h2><p class='muted'>No labels for this window yet.</p>"
    note = (
        ""
        if q["sufficient_labels"]
        else (
            f"<p class='fired'>Only {q['labelled']} labelled rows (minimum {min_labelled}): "
            "indicative, not decisive.</p>"
        )
    )
    cards = ""
    for name in ("f1", "precision", "recall", "accuracy", "fpr", "fnr", "roc_auc"):
        ci = q["ci"].get(name)
        band = f"{ci[0]:.3f} .. {ci[1]:.3f}" if ci else "n/a"
        cards += f"<div class='card'>{name.upper()}<b>{_fmt(q[name])}</b><span class='muted'>95% CI {band}</span></div>"
    return (
        f"<h2>Quality on the labelled subset ({q['labelled']} rows)</h2>{note}<div class='cards'>{cards}</div>"
        f"{_confusion_chart(q)}"
    )


def _band(ci: list[float] | None) -> str:
    return f"{ci[0]:.3f} .. {ci[1]:.3f}" if ci else "n/a"


def _versions(report: dict) -> str:
    """Per answering version under an A/B split; the model's signals read the served version's rows."""
    per = report.get("by_model_version")
    if not per:
        return ""
    served = report["model"]["version"]
    rows = ""
    for version, q in per.items():
        mark = " (served; signals)" if version == served else ""
        cells = "".join(f"<td>{_fmt(q[k])}</td>" for k in ("precision", "recall", "fpr", "fnr"))
        rows += (
            f"<tr><td>{_esc(version)}{mark}</td><td>{q['rows']:,}</td><td>{q['labelled']:,}</td>"
            f"<td>{_fmt(q['f1'])} <span class='muted'>[{_band(q['ci'].get('f1'))}]</span></td>{cells}</tr>"
        )
    return (
        "<h2>Quality per model version (A/B split)</h2><p class='muted'>The quality above is the whole traffic. "
        f"performance_drop and rollback are judged on {_esc(served)}'s rows only; drift, new labels and the "
        "schedule on every row.</p><table><tr><th>version</th><th>rows</th><th>labelled</th><th>F1 [95% CI]</th>"
        f"<th>precision</th><th>recall</th><th>FPR</th><th>FNR</th></tr>{rows}</table>"
    )


def _shadow_chart(shadow: dict) -> str:
    import matplotlib.pyplot as plt

    bars = [
        ("agreement", shadow["agreement"], shadow["agreement_ci"], "#555"),
        ("F1 served", shadow["served"]["f1"], shadow["served"]["ci"].get("f1"), "#1565c0"),
        (f"F1 shadow {shadow['model_version']}", shadow["shadow"]["f1"], shadow["shadow"]["ci"].get("f1"), "#ef6c00"),
    ]
    bars = [b for b in bars if b[1] is not None]
    fig, ax = plt.subplots(figsize=(6.5, 0.55 * len(bars) + 0.9))
    for y, (_name, value, ci, colour) in enumerate(bars):
        lo, hi = ci or [value, value]
        ax.errorbar(value, y, xerr=[[value - lo], [hi - value]], fmt="o", color=colour, capsize=4)
        ax.text(hi, y, f"  {value:.3f}", va="center", fontsize=8)
    ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    # the rollback line belongs to the F1 rows only, not to agreement (row 0)
    ax.plot(
        [ROLLBACK_F1] * 2,
        [0.5, len(bars) - 0.5],
        color="#c62828",
        ls="--",
        lw=1,
        label=f"rollback F1 {ROLLBACK_F1}",
    )
    ax.legend(fontsize=7, loc="lower left")
    ax.set_xlim(0, 1.08)
    ax.invert_yaxis()
    ax.set_title("Shadow against served (95% intervals)", fontsize=9)
    return _png(fig)


def _labels_note(shadow: dict, minimum: int) -> str:
    if not shadow["labelled"]:
        return "<p class='muted'>No labels for the compared rows yet: agreement only.</p>"
    if not shadow["sufficient_labels"]:
        return f"<p class='fired'>Only {shadow['labelled']} labelled rows (minimum {minimum}): indicative.</p>"
    return ""


def _shadow(report: dict) -> str:
    shadow = report.get("shadow")
    if not shadow:
        return ""
    d, m = shadow["f1_difference"], shadow["mcnemar"]
    cards = [
        ("rows compared", f"{shadow['rows']:,}", f"{shadow['coverage']:.0%} of the window"),
        ("agreement", _fmt(shadow["agreement"]), f"95% CI {_band(shadow['agreement_ci'])}"),
        ("F1 served", _fmt(shadow["served"]["f1"]), f"95% CI {_band(shadow['served']['ci'].get('f1'))}"),
        ("F1 shadow", _fmt(shadow["shadow"]["f1"]), f"95% CI {_band(shadow['shadow']['ci'].get('f1'))}"),
        ("F1 shadow - served", _fmt(d["value"]), f"paired 95% CI {_band(d['ci'])}"),
        ("McNemar", f"p {m['p_value']:.3g}", f"only served right {m['b']}, only shadow right {m['c']}"),
    ]
    html_cards = "".join(f"<div class='card'>{k}<b>{v}</b><span class='muted'>{n}</span></div>" for k, v, n in cards)
    note = _labels_note(shadow, report["thresholds"]["min_labelled"])
    return (
        f"<h2>Shadow model {_esc(shadow['model_version'])} against the served model</h2>"
        f"<p class='muted'>Agreement on every compared row; F1s on the {shadow['labelled']:,} labelled ones.</p>"
        f"{note}<div class='cards'>{html_cards}</div>{_shadow_chart(shadow) if shadow['labelled'] else ''}"
    )


def _quality_trend(report: dict, test_f1: float, min_labelled: int) -> str:
    import matplotlib.pyplot as plt

    trend = report["trend"]
    dates = _dates(trend)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    for name, colour in (("f1", "#1565c0"), ("fpr", "#ef6c00"), ("fnr", "#6a1b9a")):
        xs, ys, lo, hi = [], [], [], []
        for d, w in zip(dates, trend, strict=True):
            q = w["quality"]
            if w["sufficient_labels"] and q[name] is not None:
                xs.append(d)
                ys.append(q[name])
                ci = q["ci"].get(name) or [q[name], q[name]]
                lo.append(ci[0])
                hi.append(ci[1])
        if xs:
            ax.plot(xs, ys, "o-", color=colour, label=name.upper())
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.15)
    for d, w in zip(dates, trend, strict=True):
        if not w["sufficient_labels"]:
            ax.axvspan(datetime.fromisoformat(w["start"]), d, color="#bbb", alpha=0.35, lw=0)  # the whole window
            ax.text(d, 0.98, f"{w['labelled']} labels", rotation=90, va="top", ha="right", fontsize=7, color="#555")
    ax.axhline(ROLLBACK_F1, color="#c62828", ls="--", lw=1, label=f"rollback F1 {ROLLBACK_F1}")
    ax.axhline(test_f1 * (1 - C.PERFORMANCE_DROP), color="#1565c0", ls=":", lw=1, label="retrain F1 floor")
    ax.set_ylim(0, 1)
    ax.set_ylabel("rate")
    ax.set_title("Quality per window (95% bootstrap CI; grey: too few labels to plot)")
    ax.legend(loc="lower left", fontsize=8, ncol=5)
    fig.autofmt_xdate()
    sparse = [f"{w['end'][:10]} ({w['labelled']})" for w in trend if not w["sufficient_labels"]]
    note = (
        f"<p class='muted'>Windows with fewer than {min_labelled} labels are shaded and not plotted: "
        f"{_esc(', '.join(sparse))}.</p>"
        if sparse
        else ""
    )
    return "<h2>Quality over time</h2>" + _png(fig) + note


def _psi_heatmap(report: dict, names: list[str]) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    trend = report["trend"]
    grid = np.array([[w["psi"].get(n) if w["psi"].get(n) is not None else np.nan for w in trend] for n in names])
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(trend) + 4), 0.3 * len(names) + 1.5))
    cmap = ListedColormap(["#e8f5e9", "#a5d6a7", "#ffe082", "#ef9a9a", "#c62828"])
    norm = BoundaryNorm([0, 0.05, C.PSI_MODERATE, C.PSI_MAJOR, 0.5, 1.0], cmap.N, extend="neither")
    image = ax.imshow(np.clip(np.nan_to_num(grid, nan=0.0), 0, 0.999), aspect="auto", cmap=cmap, norm=norm)
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v) and v > C.PSI_MODERATE:
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xticks(range(len(trend)), [w["end"][:10] for w in trend], rotation=45, ha="right", fontsize=7)
    fig.colorbar(image, ax=ax, ticks=[0, 0.05, C.PSI_MODERATE, C.PSI_MAJOR, 0.5], label="PSI")
    ax.set_title(f"PSI per feature and window (moderate > {C.PSI_MODERATE}, major > {C.PSI_MAJOR})")
    sparse = [f"{w['end'][:10]} ({w['predictions']})" for w in trend if not w["drift"]["sufficient_rows"]]
    note = (
        f"<p class='muted'>Windows with fewer than {report['drift']['min_rows']} predictions judge no drift (their "
        f"PSI is mostly sampling noise): {_esc(', '.join(sparse))}.</p>"
        if sparse
        else ""
    )
    return "<h2>Feature drift</h2>" + _png(fig) + note


def _drift_table(report: dict) -> str:
    drift = report["drift"]
    rows = sorted(drift["psi"].items(), key=lambda kv: -(kv[1] or 0))
    body = ""
    for name, value in rows:
        ks = (drift.get("ks") or {}).get(name) or {}
        cls = "fired" if name in drift["drifted"] else ""
        pvalue = "n/a" if ks.get("pvalue") is None else f"{ks['pvalue']:.1e}"
        body += (
            f"<tr><td>{_esc(name)}</td><td class='{cls}'>{_fmt(value)}</td><td>{_fmt(ks.get('statistic'))}</td>"
            f"<td>{pvalue}</td>"
            f"<td>{drift['out_of_range_by_feature'].get(name, 0):.1%}</td></tr>"
        )
    if not drift["sufficient_rows"]:
        status = (
            f"<p class='fired'>Insufficient rows: {drift['rows']} predictions in the window, {drift['min_rows']} "
            "needed before drift decides anything. The PSI below is shown, not judged.</p>"
        )
    else:
        chance = max((v for v in drift["psi_critical"].values() if v is not None), default=0.0)
        status = (
            f"<p class='muted'>A feature counts as drifted above PSI {C.PSI_MAJOR}, or above {chance:.3f} where "
            f"larger: what chance alone reaches at {drift['rows']} rows (chi-square, "
            f"{drift['significance']:.0%} for all features together).</p>"
        )
    return (
        status
        + "<details><summary>Current window, every feature (PSI, KS against the training CDF, out of range)</summary>"
        "<table><tr><th>feature</th><th>PSI</th><th>KS D</th><th>KS p</th><th>out of range</th></tr>"
        f"{body}</table></details>"
    )


def _histograms(report: dict, windows: dict, names: list[str], quantiles: np.ndarray) -> str:
    import matplotlib.pyplot as plt

    drift = report["drift"]
    chosen = list(drift["drifted"])
    title = "Training against recent, drifted features (PSI above its limit)"
    if not chosen:
        chosen = [k for k, _ in sorted(drift["psi"].items(), key=lambda kv: -(kv[1] or 0))[:3]]
        title = "Training against recent, the largest shifts (" + (
            "none above its limit)" if drift["sufficient_rows"] else "too few rows to judge drift)"
        )
    recent = windows.get(0)
    if recent is None or not len(recent.probability):
        return ""
    cols = min(3, len(chosen))
    rows = (len(chosen) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, chosen, strict=False):
        j = names.index(name)
        q = quantiles[j][::5]  # 20 bins of 5 % each: the 1 % bins draw sampling noise
        widths = np.diff(q)
        keep = widths > 0
        density = np.where(keep, 0.05 / np.where(keep, widths, 1), 0)
        ax.stairs(density, q, color="#555", label="training", lw=1.5)
        values = recent.features[:, j]
        lo, hi = min(q[0], values.min()), max(q[-1], values.max())
        ax.hist(values, bins=40, range=(lo, hi), density=True, alpha=0.5, color="#ef6c00", label="recent window")
        ax.set_title(f"{name} (PSI {drift['psi'][name]:.2f})", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(chosen) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return f"<h2>{title}</h2>" + _png(fig)


def _predictions_trend(report: dict) -> str:
    import matplotlib.pyplot as plt

    trend = report["trend"]
    dates = _dates(trend)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.4))
    pred = [w["defect_rate"]["predicted"] for w in trend]
    actual = [w["defect_rate"]["actual"] if w["labelled"] else None for w in trend]
    left.plot(dates, pred, "o-", label="predicted defect rate", color="#1565c0")
    left.plot(
        dates, [np.nan if a is None else a for a in actual], "s--", label="inspected defect rate", color="#c62828"
    )
    left.set_ylim(0, max([0.5] + [v for v in pred + actual if v is not None]) * 1.1)
    left.legend(fontsize=8)
    left.set_title("Predicted against inspected defect rate")
    right.plot(dates, [w["prediction_psi"] or 0 for w in trend], "o-", label="PSI of the probability", color="#6a1b9a")
    right.plot(
        dates, [w["out_of_range_share"] or 0 for w in trend], "s-", label="share of rows out of range", color="#555"
    )
    right.axhline(C.PSI_MAJOR, color="#c62828", ls="--", lw=1)
    right.legend(fontsize=8)
    right.set_title("Prediction drift and out-of-range readings")
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    return "<h2>Predictions</h2>" + _png(fig)


def _inputs(report: dict) -> str:
    cap, lab = report["inputs"]["captures"], report["inputs"]["labels"]
    keys = [
        "files",
        "lines",
        "prediction",
        "unique_predictions",
        "duplicates",
        "other",
        "text",
        "blank",
        "corrupt",
        "schema",
        "invalid",
    ]
    cap_rows = "".join(f"<tr><td>{k}</td><td>{cap[k]:,}</td></tr>" for k in keys)
    extra = ""
    if cap["invalid_fields"]:
        extra += (
            "<p>Invalid records by field: "
            + _esc(", ".join(f"{k} {v}" for k, v in cap["invalid_fields"].items()))
            + "</p>"
        )
    if cap["truncated_gzip_files"]:
        extra += (
            "<p class='fired'>Truncated gzip (read up to the last whole line): "
            + _esc(", ".join(cap["truncated_gzip_files"]))
            + "</p>"
        )
    if cap["other_model_versions"]:
        extra += "<p>Records of other model versions (not analysed): " + _esc(cap["other_model_versions"]) + "</p>"
    lab_keys = [
        "rows",
        "valid",
        "non_binary",
        "missing_id",
        "unreadable",
        "bad_inspected_at",
        "duplicates",
        "conflicting",
        "unique",
        "joined",
        "without_capture",
    ]
    lab_rows = "".join(f"<tr><td>{k}</td><td>{lab[k]:,}</td></tr>" for k in lab_keys)
    if lab["unknown_columns"]:
        lab_rows += f"<tr><td>unknown columns</td><td>{_esc(lab['unknown_columns'])}</td></tr>"
    examples = "".join(
        f"<li><code>{_esc(e['file'])}{':' + str(e['line']) if e.get('line') else ''}</code> {_esc(e['kind'])}: "
        f"{_esc(e['detail'])}{' &mdash; <code>' + _esc(e['text']) + '</code>' if e.get('text') else ''}</li>"
        for e in cap["examples"] + lab["examples"]
    )
    return (
        "<h2>Inputs</h2><div class='cards'><div><h3>Capture lines</h3><table>" + cap_rows + "</table></div>"
        "<div><h3>Labels</h3><table>"
        + lab_rows
        + "</table></div></div>"
        + extra
        + (f"<h3>Examples</h3><ul>{examples}</ul>" if examples else "")
    )


def render(report: dict, windows: dict, names: list[str], quantiles: np.ndarray, min_labelled: int) -> str:
    """The whole page as one string."""
    import matplotlib

    matplotlib.use("Agg")
    body = "".join(
        [
            f"<h1>diecast-t1 model monitor</h1><p class='muted'>generated {_esc(report['generated_at'][:19])} UTC, "
            f"as of {_esc(report['as_of'][:19])}, model trained {_esc(report['model']['trained_at'][:10])}</p>",
            _decision(report),
            _quality(report, min_labelled),
            _versions(report),
            _shadow(report),
            _quality_trend(report, report["model"]["test_f1"], min_labelled),
            _psi_heatmap(report, names),
            _drift_table(report),
            _histograms(report, windows, names, quantiles),
            _predictions_trend(report),
            _inputs(report),
        ]
    )
    head = f"<meta charset='utf-8'><title>Model monitor: {report['decision']}</title><style>{CSS}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"
