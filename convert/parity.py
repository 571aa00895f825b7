"""The parity certificate: the ONNX runtime against the reference predictor, on the same rows.

Row sets
--------
- ``dataset``: every row of the embedded dataset, through the runtime one row at a time;
- ``dataset_batched``: the same rows in batches of ``BATCH``;
- ``fuzz``: >= 100,000 generated rows: uniform over the training range widened by half its width, heavy-tailed
  (Student t, 2 degrees of freedom, around the training mean) and far outside (up to 100x the range);
- ``thresholds``: for every split threshold ``t`` the GB places on one of the 30 input features, a median row
  with that feature set so that the scaled value lands on ``t`` and on the float32 values next to it, mapped
  back through the scaler (and the float64 neighbours of that raw value).

Bars (named constants below): labels agree on all dataset and threshold rows and on >= 99.99 % of fuzz rows;
|dprobability| <= 1e-5 on every dataset row and on >= 99.99 % of all rows; |dlatent| <= 1e-4 on every row
(divided by the row's largest |latent| where that exceeds 1: float32 keeps ~7 significant digits, and far
outside the training range latents reach the thousands); |dattention| <= 1e-5. Every row past a bar is
listed with an explanation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

PROBA_ATOL = 1e-5
LATENT_ATOL = 1e-4
ATTENTION_ATOL = 1e-5
FUZZ_LABEL_AGREEMENT = 0.9999
ALL_PROBA_AGREEMENT = 0.9999
FUZZ_ROWS = 100_000
BATCH = 256
MAX_LISTED_ROWS = 50

Predict = Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass
class RowSetResult:
    name: str
    rows: int
    label_agreement: float
    max_dp: float
    within_dp: float
    max_dlatent: float
    max_dattention: float
    offenders: list[dict] = field(default_factory=list)


def fuzz_rows(stats_min: np.ndarray, stats_max: np.ndarray, mean: np.ndarray, std: np.ndarray, n: int, seed: int):
    rng = np.random.default_rng(seed)
    width = stats_max - stats_min
    n_uniform, n_heavy = n // 2, (2 * n) // 5
    n_far = n - n_uniform - n_heavy
    uniform = rng.uniform(stats_min - width / 2, stats_max + width / 2, size=(n_uniform, len(mean)))
    heavy = mean + std * rng.standard_t(2, size=(n_heavy, len(mean)))
    far = mean + width * rng.uniform(-100, 100, size=(n_far, len(mean)))
    # in the far block, keep most features ordinary so that single far-out readings are exercised too
    keep = rng.random((n_far, len(mean))) < 0.8
    far[keep] = uniform[:n_far][keep]
    return np.vstack([uniform, heavy, far])


def threshold_rows(gb, scaler, base_row: np.ndarray, n_inputs: int) -> tuple[np.ndarray, list[dict]]:
    """Rows whose scaled feature j sits on, and right next to, each GB split on input feature j."""
    rows, info = [], []
    mean, scale = scaler.mean_, scaler.scale_
    seen: set[tuple[int, float]] = set()
    for est in gb.estimators_.ravel():
        tree = est.tree_
        for feat, thr in zip(tree.feature, tree.threshold, strict=True):
            if feat < 0 or feat >= n_inputs or (feat, thr) in seen:
                continue
            seen.add((feat, thr))
            f32 = np.float32(thr)
            targets = {np.float64(thr), np.float64(np.nextafter(f32, -np.inf)), np.float64(f32)}
            targets.add(np.float64(np.nextafter(f32, np.inf)))
            raws = set()
            for s in targets:
                raw = s * scale[feat] + mean[feat]
                raws.update({raw, np.nextafter(raw, -np.inf), np.nextafter(raw, np.inf)})
            for raw in sorted(raws):
                row = base_row.copy()
                row[feat] = raw
                rows.append(row)
                info.append({"feature": int(feat), "threshold": float(thr), "raw": float(raw)})
    return np.array(rows), info


def compare(name: str, ref: dict, got: dict, explain: Callable[[int], str] | None = None) -> RowSetResult:
    p_ref = np.asarray(ref["probability"], dtype=np.float64)
    p_got = np.asarray(got["probability"], dtype=np.float64)
    dp = np.abs(p_ref - p_got)
    lat_ref = ref["latent"].astype(np.float64)
    # float32 carries ~7 significant digits: far outside the training range a latent of magnitude 1e3 cannot
    # agree to 1e-4 absolute between two float32 implementations, so the bar scales with the row's magnitude.
    row_scale = np.maximum(1.0, np.abs(lat_ref).max(axis=1, keepdims=True))
    dlat = np.abs(lat_ref - got["latent"]) / row_scale
    datt = np.abs(ref["attention"].astype(np.float64) - got["attention"])
    label_ok = ref["label"] == got["label"]
    bad = (~label_ok) | (dp > PROBA_ATOL) | (dlat.max(axis=1) > LATENT_ATOL) | (datt.max(axis=1) > ATTENTION_ATOL)
    offenders = []
    for i in np.flatnonzero(bad)[:MAX_LISTED_ROWS]:
        offenders.append(
            {
                "row": int(i),
                "label": [int(ref["label"][i]), int(got["label"][i])],
                "probability": [float(p_ref[i]), float(p_got[i])],
                "dp": float(dp[i]),
                "dlatent": float(dlat[i].max()),
                "dattention": float(datt[i].max()),
                "explanation": explain(int(i)) if explain else "",
            }
        )
    return RowSetResult(
        name=name,
        rows=len(dp),
        label_agreement=float(label_ok.mean()),
        max_dp=float(dp.max()),
        within_dp=float((dp <= PROBA_ATOL).mean()),
        max_dlatent=float(dlat.max()),
        max_dattention=float(datt.max()),
        offenders=offenders,
    )


def explain_row(gb, ref_features: np.ndarray, onnx_features: np.ndarray, n_inputs: int) -> str:
    """Where the two feature vectors (42,) take different branches in the GB's trees."""
    a32, b32 = ref_features.astype(np.float32), onnx_features.astype(np.float32)
    notes = []
    for t, est in enumerate(gb.estimators_.ravel()):
        tree = est.tree_
        node = 0
        while tree.children_left[node] != -1:
            f, thr = tree.feature[node], tree.threshold[node]
            go_a, go_b = a32[f] <= thr, b32[f] <= thr
            if go_a != go_b:
                kind = f"latent_{f - n_inputs}" if f >= n_inputs else f"input {f}"
                notes.append(
                    f"tree {t}: {kind} split at {thr:.7g}; reference {a32[f]:.7g}, onnx {b32[f]:.7g} "
                    f"(|d|={abs(float(a32[f]) - float(b32[f])):.2g})"
                )
                break
            node = tree.children_left[node] if go_a else tree.children_right[node]
    if not notes:
        return "same branches in every tree: float32 vs float64 summation of the tree outputs"
    return f"{len(notes)} tree(s) branch differently; first: {notes[0]}"


def run_certificate(reference, predict: Predict, predict_one: Predict, fuzz_n: int = FUZZ_ROWS, seed: int = 7):
    """Compare ``predict`` (the ONNX runtime) with ``reference.predict`` on every row set. Returns a report."""
    from convert import dataset

    started = time.perf_counter()
    meta = reference.metadata
    stats = meta["feature_stats"]
    names = reference.feature_names
    smin, smax = (np.array([stats[n][k] for n in names]) for k in ("min", "max"))
    smean, sstd = (np.array([stats[n][k] for n in names]) for k in ("mean", "std"))
    X_data, _ = dataset.load_csv(dataset.DEFAULT_CSV)
    n_inputs = len(names)

    def explainer(X: np.ndarray, ref: dict, got: dict) -> Callable[[int], str]:
        """Explains one offending row on demand (most row sets have none: nothing is recomputed up front)."""

        def explain(i: int) -> str:
            scaled = reference.scaler.transform(X[i : i + 1])[0]
            a = np.hstack([scaled, ref["latent"][i]])
            b = np.hstack([scaled, got["latent"][i]])
            return explain_row(reference.gb, a, b, n_inputs)

        return explain

    def check(name: str, X: np.ndarray, ref: dict, got: dict) -> None:
        results.append(compare(name, ref, got, explainer(X, ref, got)))

    results: list[RowSetResult] = []
    ref_data = reference.predict(X_data)
    singles = [predict_one(X_data[i : i + 1]) for i in range(len(X_data))]
    check("dataset (batch 1)", X_data, ref_data, {k: np.concatenate([s[k] for s in singles]) for k in singles[0]})
    parts = [predict(X_data[i : i + BATCH]) for i in range(0, len(X_data), BATCH)]
    check(f"dataset (batch {BATCH})", X_data, ref_data, {k: np.concatenate([p[k] for p in parts]) for k in parts[0]})

    X_fuzz = fuzz_rows(smin, smax, smean, sstd, fuzz_n, seed)
    check("fuzz", X_fuzz, reference.predict(X_fuzz), predict(X_fuzz))

    X_thr, _ = threshold_rows(reference.gb, reference.scaler, np.median(X_data, axis=0), n_inputs)
    check("split thresholds", X_thr, reference.predict(X_thr), predict(X_thr))

    return assess(results, time.perf_counter() - started)


def assess(results: list[RowSetResult], seconds: float) -> dict:
    failures = []
    total_rows = sum(r.rows for r in results)
    within_all = sum(r.within_dp * r.rows for r in results) / total_rows
    for r in results:
        exact_labels = r.name != "fuzz"
        if exact_labels and r.label_agreement < 1.0:
            failures.append(f"{r.name}: labels agree on {r.label_agreement:.4%} of rows; the bar is 100%")
        if not exact_labels and r.label_agreement < FUZZ_LABEL_AGREEMENT:
            failures.append(f"{r.name}: labels agree on {r.label_agreement:.4%}; the bar is {FUZZ_LABEL_AGREEMENT:.2%}")
        if r.name.startswith("dataset") and r.max_dp > PROBA_ATOL:
            failures.append(f"{r.name}: max |dp| {r.max_dp:.2e} > {PROBA_ATOL:.0e}")
        if r.max_dlatent > LATENT_ATOL:
            failures.append(f"{r.name}: max |dlatent| {r.max_dlatent:.2e} > {LATENT_ATOL:.0e}")
        if r.max_dattention > ATTENTION_ATOL:
            failures.append(f"{r.name}: max |dattention| {r.max_dattention:.2e} > {ATTENTION_ATOL:.0e}")
    if within_all < ALL_PROBA_AGREEMENT:
        failures.append(f"all rows: |dp| <= {PROBA_ATOL:.0e} on {within_all:.4%}; the bar is {ALL_PROBA_AGREEMENT:.2%}")
    return {
        "passed": not failures,
        "failures": failures,
        "bars": {
            "probability_atol": PROBA_ATOL,
            "latent_atol": LATENT_ATOL,
            "latent_note": "|dlatent| / max(1, max |latent| of the row)",
            "attention_atol": ATTENTION_ATOL,
            "fuzz_label_agreement": FUZZ_LABEL_AGREEMENT,
            "all_rows_probability_agreement": ALL_PROBA_AGREEMENT,
        },
        "rows": total_rows,
        "all_rows_within_probability_atol": within_all,
        "seconds": round(seconds, 1),
        "row_sets": [r.__dict__ for r in results],
    }


def table(report: dict) -> str:
    head = f"{'row set':<22}{'rows':>8}{'labels agree':>14}{'max |dp|':>11}{'|dp|<=1e-5':>12}{'max |dlat|':>12}"
    lines = [head + f"{'max |datt|':>12}{'listed':>8}", "-" * (len(head) + 20)]
    for r in report["row_sets"]:
        lines.append(
            f"{r['name']:<22}{r['rows']:>8}{r['label_agreement']:>14.4%}{r['max_dp']:>11.1e}"
            f"{r['within_dp']:>12.4%}{r['max_dlatent']:>12.1e}{r['max_dattention']:>12.1e}{len(r['offenders']):>8}"
        )
    verdict = "PASS" if report["passed"] else "FAIL"
    lines.append(f"parity: {verdict} on {report['rows']} rows in {report['seconds']} s")
    lines += [f"  - {f}" for f in report["failures"]]
    return "\n".join(lines)
