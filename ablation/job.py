"""One ablation run: the plan (stated with its predicted time before any training), the grid under the budget, the
report. ``diecast ablation`` parses the command line and calls ``run``."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ablation.grid import Grid
from ablation.store import Store, plan_key


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    data: Path
    out: Path
    grid: Grid
    budget: float  # seconds; units not started by then are skipped, and the report lists them
    seed: int
    progress: bool
    jobs: int = 0  # 0: one per core
    fresh: bool = False  # ignore the units an earlier run of the same plan left in out/units


def describe(grid: Grid, rows: int) -> str:
    return (
        f"latent sizes {list(grid.latent_dims)} x classifiers {list(grid.kinds)} x readings {list(grid.features)}: "
        f"{len(grid.configs())} configurations, {grid.folds} stratified folds of {rows} training + validation rows, "
        f"encoders of at most {grid.max_epochs} epochs"
    )


def plan_of(opts: Options, rows: int, jobs: int) -> dict:
    """What the study will do and its predicted time, stated before any training."""
    return {
        "description": describe(opts.grid, rows),
        "configurations": len(opts.grid.configs()),
        "folds": opts.grid.folds,
        "rows": rows,
        "units": len(opts.grid.units()),
        "jobs": jobs,
        "predicted": opts.grid.predicted_seconds(rows, jobs),
        "budget_seconds": opts.budget,
        "feature_selection": "the k readings with the largest ANOVA F against the label (f_classif), fitted on each "
        "fold's training rows; the classifier sees them + every latent",
        "params": {k: opts.grid.params_of(k) for k in opts.grid.kinds},
    }


def run(opts: Options) -> dict:
    """Run the study and write the report into ``opts.out``. Returns the report's document."""
    from ablation import report, study
    from convert import dataset, kernels, train

    level = kernels.require()
    X, y = dataset.load_csv(opts.data)
    data = study.prepare(X, y, opts.grid, opts.seed)
    jobs = opts.jobs or os.cpu_count() or 1
    plan = plan_of(opts, len(data.y), jobs)
    predicted = plan["predicted"]
    store = Store(opts.out, plan_key(opts.data, opts.grid, opts.seed, level))
    finished = {} if opts.fresh else store.finished(opts.grid.units())
    plan["resumed_units"] = len(finished)
    left = predicted["seconds"] * (1 - len(finished) / plan["units"])
    _log(
        f"plan: {plan['description']}; {predicted['encoders']} encoders and {predicted['fits']} classifier fits, "
        f"predicted {predicted['seconds']:.0f} s on {jobs} core(s); budget {opts.budget:.0f} s"
    )
    if finished:
        _log(
            f"resuming: {len(finished)} of {plan['units']} units finished earlier in {store.folder}, about "
            f"{left:.0f} s of the plan left (--fresh redoes them)"
        )
    if left > opts.budget:
        _log("the budget is shorter than the plan: the units it cuts are listed; run again to continue them")
    started = time.perf_counter()
    protocol = train.Options(seed=opts.seed, cv_folds=opts.grid.folds).protocol()
    units = study.run(data, opts.grid, protocol, opts.budget, jobs, opts.progress, finished, store.save)
    table, missing = report.rows(units, opts.grid)
    chosen = report.pick(table)
    doc = {
        "plan": plan,
        "seconds": round(time.perf_counter() - started, 1),
        "torch_kernels": level,
        "data": str(opts.data),
        "pick": chosen,
        "train_command": report.reproduce(chosen, table, opts.data),
        "rows": table,
        "not_run": missing,
        "units": [{k: u[k] for k in ("latent_dim", "fold", "skipped")} | {"encoder": u.get("encoder")} for u in units],
    }
    report.write(opts.out, doc, opts.grid)
    return doc
