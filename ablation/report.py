"""The ablation's report: one row per configuration (mean +- sd over its folds), the pick by ``make train``'s margin
rule, the reproducing ``make train`` command, ``report.json`` and a self-contained ``report.html`` with its charts.

The pick: the configuration with the best mean F1 replaces the default (GB on 30 readings + 12 latents, the
shipped v1.0) only if its F1 beats the default's by more than the sum of their standard errors over the same folds
(``convert.tuning.significant_gain``, the rule of ``make train``'s search). A configuration missing a fold (the
budget ran out) is listed as not run, never ranked.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ablation.grid import DEFAULT_CONFIG, FEATURE_COUNTS, NO_LATENTS, Grid
from convert import kinds

METRICS = ("f1_score", "roc_auc", "accuracy", "precision", "recall")
TIMES = ("fit_seconds", "predict_us_per_row")


def rows(units: list[dict], grid: Grid) -> tuple[list[dict], list[dict]]:
    """(one row per configuration run on every fold, the configurations not run)."""
    by_config: dict[tuple, list[dict]] = {}
    for unit in units:
        for r in unit["results"]:
            by_config.setdefault((r["model"], unit["latent_dim"], r["features"]), []).append(r)
    table, missing = [], []
    for kind, latent, k in grid.configs():
        folds = by_config.get((kind, latent, k), [])
        if len(folds) < grid.folds:
            missing.append({"model": kind, "latent_dim": latent, "features": k, "folds_run": len(folds)})
            continue
        row = {"model": kind, "latent_dim": latent, "features": k, "folds": grid.folds}
        for name in (*METRICS, *TIMES):
            values = np.array([f[name] for f in folds], dtype=float)
            row[name] = {"mean": round(float(values.mean()), 4), "sd": round(float(values.std(ddof=1)), 4)}
        row["f1_folds"] = [f["f1_score"] for f in folds]
        table.append(row)
    table.sort(key=lambda r: -r["f1_score"]["mean"])
    return table, missing


def pick(table: list[dict]) -> dict:
    """The margin rule: the best configuration, and whether it replaces the default."""
    from convert.tuning import significant_gain

    if not table:
        return {"decision": "nothing was run", "best": None, "pick": None}
    best = table[0]
    key = lambda r: (r["model"], r["latent_dim"], r["features"])  # noqa: E731
    default = next((r for r in table if key(r) == DEFAULT_CONFIG), None)
    if default is None:
        return {"decision": "the default was not run: no pick", "best": key(best), "pick": None}
    if key(best) == DEFAULT_CONFIG:
        return {"decision": "the default is best", "best": key(best), "pick": DEFAULT_CONFIG, "rule": None}
    rule = significant_gain(best["f1_folds"], default["f1_folds"])
    chosen = key(best) if rule["significant"] else DEFAULT_CONFIG
    verdict = "adopted" if rule["significant"] else "kept default"
    reason = (
        f"F1 {best['f1_score']['mean']:.4f} vs the default's {default['f1_score']['mean']:.4f}: "
        f"gain {rule['gain']:+.4f} {'>' if rule['significant'] else '<='} "
        f"the sum of standard errors {rule['margin']:.4f}"
    )
    return {"decision": f"{verdict}: {reason}", "best": key(best), "pick": chosen, "rule": rule}


ALL_READINGS = max(FEATURE_COUNTS)
TRAINABLE = f"an encoder of latent size {', '.join(map(str, kinds.LATENT_DIMS))} on all {ALL_READINGS} readings"


def trainable(config: tuple | None) -> bool:
    """Whether ``make train`` trains a configuration (``TRAINABLE``)."""
    return config is not None and config[1] in kinds.LATENT_DIMS and config[2] == ALL_READINGS


def _command(config: tuple, data: Path) -> str:
    kind, latent, _ = config
    return f"make train VERSION=v2.0 MODEL={kind} LATENT_DIM={latent} DATA={data}"


def reproduce(chosen: dict, table: list[dict], data: Path) -> dict:
    """The ``make train`` command for the pick. A pick ``make train`` cannot train is a study result; the command
    is then the margin rule's pick among the configurations it can train, and says so."""
    config = tuple(chosen["pick"]) if chosen["pick"] else None
    if config is None:
        return {"command": None, "pick": None, "note": "no configuration was picked"}
    if trainable(config):
        return {"command": _command(config, data), "pick": config, "note": "trains the pick on the training split"}
    among = pick([r for r in table if trainable((r["model"], r["latent_dim"], r["features"]))])
    alt = tuple(among["pick"]) if among["pick"] else None
    return {
        "command": _command(alt, data) if alt else None,
        "pick": alt,
        "note": f"the pick ({describe(config)}) is a study result only: make train trains {TRAINABLE}. Among those, "
        f"the margin rule picks {describe(alt)} ({among['decision']})",
    }


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def charts(table: list[dict], grid: Grid) -> list[tuple[str, str]]:
    """(title, base64 PNG): F1 by latent size per classifier (on the grid's most readings, 30 in the full grid), and
    F1 against predict time; none when nothing was run."""
    if not table:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out, most = [], max(grid.features)
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind in grid.kinds:
        pts = sorted((r["latent_dim"], r["f1_score"]) for r in table if r["model"] == kind and r["features"] == most)
        if pts:
            ax.errorbar([p[0] for p in pts], [p[1]["mean"] for p in pts], [p[1]["sd"] for p in pts], marker="o",
                        capsize=3, label=kind)  # fmt: skip
    ax.set(xlabel="latent size (0: the readings alone)", ylabel="F1 (mean ± sd over folds)", xticks=grid.latent_dims)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    out.append((f"F1 by latent size per classifier, {most} readings", _png(fig)))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind in grid.kinds:
        mine = [r for r in table if r["model"] == kind]
        ax.scatter([r["predict_us_per_row"]["mean"] for r in mine], [r["f1_score"]["mean"] for r in mine], label=kind)
    ax.set(xscale="log", xlabel="predict time, µs per row (library, batch)", ylabel="F1 (mean over folds)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    out.append(("F1 against predict time, every configuration", _png(fig)))
    plt.close(fig)
    return out


def describe(config: tuple | None) -> str:
    """A configuration in words: ``lightgbm, latent 8, 30 readings``."""
    if config is None:
        return "none"
    kind, latent, k = config
    return f"{kind}, {'no latents' if latent == NO_LATENTS else f'latent {latent}'}, {k} readings"


def _resumed(plan: dict) -> str:
    n = plan.get("resumed_units", 0)
    return f", continuing {n} of {plan['units']} units finished by an earlier run" if n else ""


def _cell(v: dict) -> str:
    return f"{v['mean']:.4f} ± {v['sd']:.4f}"


def page(doc: dict, pictures: list[tuple[str, str]]) -> str:
    """report.html: the plan, the pick and its command, the charts (embedded), the table and what was not run."""
    e = html.escape
    head = "".join(
        f"<th>{e(h)}</th>" for h in ("#", "model", "latent", "features", *METRICS, "fit s", "predict µs/row")
    )
    picked = tuple(doc["pick"]["pick"]) if doc["pick"]["pick"] else None
    body = []
    for i, r in enumerate(doc["rows"], 1):
        mark = " class='pick'" if (r["model"], r["latent_dim"], r["features"]) == picked else ""
        cells = [str(i), r["model"], str(r["latent_dim"]), str(r["features"])]
        cells += [_cell(r[m]) for m in METRICS] + [
            f"{r['fit_seconds']['mean']:.2f}",
            f"{r['predict_us_per_row']['mean']:.2f}",
        ]
        body.append(f"<tr{mark}>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    cmd = doc["train_command"]
    missing = ", ".join(f"{m['model']}/{m['latent_dim']}/{m['features']}" for m in doc["not_run"]) or "none"
    figures = "".join(f"<h2>{e(t)}</h2><img alt='{e(t)}' src='data:image/png;base64,{p}'>" for t, p in pictures)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>diecast ablation</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}tr.pick{{background:#dfd;font-weight:bold}}</style>
</head><body><h1>Ablation: latent size x classifier x readings</h1>
<p>{e(doc["plan"]["description"])}. Predicted {doc["plan"]["predicted"]["seconds"]:.0f} s; ran in
{doc["seconds"]:.0f} s (budget {doc["plan"]["budget_seconds"]:.0f} s){e(_resumed(doc["plan"]))};
{len(doc["rows"])} configurations run, {len(doc["not_run"])} not run.</p>
<p><b>Pick:</b> {e(describe(picked))} ({e(doc["pick"]["decision"])})<br>
<b>Reproduce:</b> <code>{e(cmd["command"] or "-")}</code> {e(cmd["note"])}</p>
{figures}<h2>Every configuration (mean ± sd over {doc["plan"]["folds"]} folds), best F1 first</h2>
<table><tr>{head}</tr>{"".join(body)}</table><p>Not run: {e(missing)}</p></body></html>
"""


def write_bytes(path: Path, data: bytes) -> None:
    """Write beside ``path`` then rename, so a failed run never leaves half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


CHART_FILES = ("f1-by-latent.png", "f1-vs-predict-time.png")  # the charts of ``charts``, in its order


def write(out: Path, doc: dict, grid: Grid) -> None:
    """report.json, report.html and each chart as a PNG into ``out``: every text is made before any is written."""
    out.mkdir(parents=True, exist_ok=True)
    pictures = charts(doc["rows"], grid)
    page_text = page(doc, pictures)
    json_text = json.dumps(doc, indent=2) + "\n"
    for name, (_, png) in zip(CHART_FILES, pictures or [("", "")] * len(CHART_FILES), strict=True):
        if png:
            write_bytes(out / name, base64.b64decode(png))
        else:
            (out / name).unlink(missing_ok=True)  # an earlier run's chart would not match this report
    write_text(out / "report.json", json_text)
    write_text(out / "report.html", page_text)
