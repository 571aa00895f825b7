"""Draw the charts of docs/explaining.md from the shipped model: one part's signed contributions and the global
ranking (``make explain-charts``; matplotlib comes with the monitor extra). Each PNG is written to a temporary file
and renamed into place."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "img"
EVENT = ROOT / "tests" / "events" / "direct_named.json"


def _save(fig, name: str) -> None:
    path = OUT / name
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight", metadata={"Software": None})
    os.replace(tmp, path)
    print(f"wrote {path}")


def part_chart(plt, body: dict) -> None:
    e = body["explanation"]
    items = sorted(e["contributions"].items(), key=lambda kv: abs(kv[1]))[-15:]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.barh([k for k, _ in items], [v for _, v in items], color=["#c0392b" if v > 0 else "#2471a3" for _, v in items])
    ax.axvline(0, color="black", linewidth=0.8)
    p = body["prediction"]
    ax.set_title(
        f"One part ({p['class']}, p = {p['probability']:.3f}): the 15 largest contributions\n"
        f"base {e['base_value']:.2f} + contributions = {e['output_value']:.2f} log-odds (red: toward defect)"
    )
    ax.set_xlabel("contribution to the log-odds of defect")
    _save(fig, "explaining_part.png")


def importance_chart(plt, body: dict) -> None:
    ranking = body["importance"][::-1]
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.barh([r["feature"] for r in ranking], [r["mean_abs_contribution"] for r in ranking], color="#566573")
    ax.set_title(f"Global importance, {body['model_version']}: mean |contribution| over {body['rows']} held-out parts")
    ax.set_xlabel("mean |contribution| to the log-odds of defect")
    _save(fig, "explaining_importance.png")


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from explain.app import App
    from serving.settings import Settings

    app = App(Settings(model_path=str(ROOT / "models_onnx" / "v1.0")), quiet_log=True)
    OUT.mkdir(parents=True, exist_ok=True)
    part_chart(plt, app.handle(json.loads(EVENT.read_text())))
    importance_chart(plt, app.importance())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
