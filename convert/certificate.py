"""The parity certificate: every ONNX file that ships is as accurate as the original it was converted from.

One oracle, one truth, one principle:

- the oracle is the original pipeline (``convert.reference.ReferenceModel.predict``: scaler, float32 torch encoder,
  sklearn GB);
- the truth is the same weights evaluated in float64 (``ReferenceModel.truth``), on the float32 scaled readings
  both implementations see;
- an implementation passes when its error against the truth is no worse than the original's own float32 error,
  up to a factor and a floor (below), and when every row whose answer differs is explained as a float32 tie.

Bars (``Bars`` below, the same for every row set and engine):

- latent and attention error, per row: the largest |implementation - truth| over the row's values; for the
  latent divided by max(1, the row's largest |truth latent|), since float32 keeps ~7 significant digits. At each
  quantile in ``QUANTILES`` (median to max) the implementation's error may be at most ``factor`` times the
  original's error at that quantile plus ``floor``. Measured on v1.0, v1.1 and honest retrains, the ONNX graph's
  latent error quantiles are 0.2-1.7x the original's (a different but equally valid float32 summation order), its
  attention error 1-4x (constants folded and rounded once; 6e-8 at most on training rows). ``factor`` = 4 leaves
  room for another CPU's kernels; ``floor`` = 32 ulps of 1 (3.8e-6) covers quantiles where the original is near
  exact. An export bug moves latents by 1e-4 or more and fails by orders of
  magnitude; an approximate activation (onnxruntime's float32 Sigmoid inside the encoder reached 15x at the max
  on a drifted month) fails too.
- probability and label: a row whose |dprobability| > ``proba_atol`` (1e-5) or whose label differs passes only
  as an explained tie: every tree that branches differently does so at a latent split lying between the
  original's and the implementation's latent values, those two values agree to float32 working precision (the
  latent bar's allowance at the max quantile, times the row's scale), and the original GB fed the
  implementation's latents gives the implementation's probability (within ``proba_atol``). A label that flips
  with |dprobability| <= ``proba_atol`` because the threshold lies between the two probabilities is a
  threshold tie. Anything else is unexplained.
- 0 unexplained rows; 100 % label agreement on dataset rows; at most ``max_tie_share`` (0.1 %) of a row set's
  rows explained as ties; every label follows from its own probability and the original's threshold.

Row sets: the training data (one row at a time and in batches), generated rows (``fuzz_rows``), rows on the
envelope's edges (``envelope_rows``) and split-threshold rows (``threshold_rows``). Engines: onnxruntime on every
file that ships, and onnx's ``ReferenceEvaluator`` (a second, independent implementation of ONNX semantics) on
samples of the dataset and split-threshold rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

Predict = Callable[[np.ndarray], dict[str, np.ndarray]]

QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)
FLOAT32_ULP_OF_ONE = float(np.finfo(np.float32).eps)
FUZZ_ROWS = 100_000
BATCH = 256
SAMPLE_ROWS = 1_000  # rows per sampled row set for the ReferenceEvaluator: its trees run in Python, ~7 ms a row
MAX_LISTED_ROWS = 25
# Rows per engine call for the row sets run "all at once": onnxruntime keeps each session's arena at its largest
# call, and the graph's (n, 4, 30, 30) attention intermediates take ~14 KB a row each, so a forest's ~330k
# split-threshold rows in one call need over 20 GB for the two sessions.
MAX_CALL_ROWS = 32_768


@dataclass(frozen=True)
class Bars:
    proba_atol: float = 1e-5
    factor: float = 4.0
    floor: float = 32 * FLOAT32_ULP_OF_ONE
    max_tie_share: float = 0.001


BARS = Bars()


@dataclass(frozen=True)
class RowSet:
    """Rows to certify on, and what they demand. ``source`` names the rows whose evidence they share."""

    name: str
    source: str
    rows: np.ndarray  # indices into the source's rows
    exact_labels: bool  # dataset rows: labels must agree on every row
    batch: int = 0  # run the engine on this many rows at a time (0: all at once, MAX_CALL_ROWS at most)


@dataclass(frozen=True)
class Engine:
    name: str  # e.g. "onnxruntime model.onnx"
    predict: Predict
    row_sets: tuple[RowSet, ...]


@dataclass
class Evidence:
    """What the original and the truth say about one source's rows; computed once, shared by every engine."""

    X: np.ndarray
    scaled: np.ndarray  # float32 scaled readings
    ref: dict[str, np.ndarray]
    truth_latent: np.ndarray
    truth_attention: np.ndarray
    ref_latent_error: np.ndarray
    ref_attention_error: np.ndarray

    @classmethod
    def of(cls, reference, X: np.ndarray) -> Evidence:
        ref, truth = reference.predict(X), reference.truth(X)
        return cls(
            X=X,
            scaled=reference.scaled32(X),
            ref=ref,
            truth_latent=truth["latent"],
            truth_attention=truth["attention"],
            ref_latent_error=latent_error(ref["latent"], truth["latent"]),
            ref_attention_error=attention_error(ref["attention"], truth["attention"]),
        )

    def take(self, idx: np.ndarray) -> Evidence:
        return Evidence(
            X=self.X[idx],
            scaled=self.scaled[idx],
            ref={k: v[idx] for k, v in self.ref.items()},
            truth_latent=self.truth_latent[idx],
            truth_attention=self.truth_attention[idx],
            ref_latent_error=self.ref_latent_error[idx],
            ref_attention_error=self.ref_attention_error[idx],
        )


@dataclass
class RowSetResult:
    engine: str
    name: str
    rows: int
    label_agreement: float
    max_dp: float
    ties: int
    unexplained: int
    latent_error: dict[str, float]  # quantile -> the engine's error
    latent_error_original: dict[str, float]  # quantile -> the original's
    attention_error: dict[str, float]
    attention_error_original: dict[str, float]
    failures: list[str] = field(default_factory=list)
    listed: list[dict] = field(default_factory=list)


def latent_error(latent: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per row: max |latent - truth| / max(1, max |truth|); non-finite values count as an infinite error."""
    scale = np.maximum(1.0, np.abs(truth).max(axis=1))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(latent.astype(np.float64) - truth).max(axis=1) / scale
    return np.where(np.isfinite(err), err, np.inf)


def attention_error(attention: np.ndarray, truth: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(attention.astype(np.float64) - truth).max(axis=1)
    return np.where(np.isfinite(err), err, np.inf)


def _quantiles(err: np.ndarray) -> np.ndarray:
    return np.quantile(err, QUANTILES, method="higher")  # no interpolation: an infinite error stays infinite


def allowance(ref_err: np.ndarray, bars: Bars = BARS) -> np.ndarray:
    """What the bar allows at each quantile, given the original's errors."""
    return bars.factor * _quantiles(ref_err) + bars.floor


def accuracy_failures(what: str, err: np.ndarray, ref_err: np.ndarray, bars: Bars = BARS) -> list[str]:
    got, ref, allowed = _quantiles(err), _quantiles(ref_err), allowance(ref_err, bars)
    return [
        f"{what} error at the {q:.1%} quantile is {g:.2e}; the bar is {bars.factor:g} x the original's {r:.2e} "
        f"+ {bars.floor:.1e} = {a:.2e}"
        for q, g, r, a in zip(QUANTILES, got, ref, allowed, strict=True)
        if not g <= a
    ]


def _qdict(err: np.ndarray) -> dict[str, float]:
    return {f"{q:g}": float(v) for q, v in zip(QUANTILES, _quantiles(err), strict=True)}


# --- row sets -------------------------------------------------------------------------------------------------


def fuzz_rows(
    stats_min: np.ndarray,
    stats_max: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    n: int,
    seed: int,
    envelope: tuple[np.ndarray, np.ndarray],
):
    """Uniform over the training range widened by half, heavy-tailed (Student t, 2 dof) and far (up to 100x),
    kept inside the envelope the runtime answers (a Student t draw can land past it; serving refuses those)."""
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
    return np.clip(np.vstack([uniform, heavy, far]), *envelope)


def envelope_rows(envelope: tuple[np.ndarray, np.ndarray], n: int, seed: int) -> np.ndarray:
    """Rows whose every reading sits on an edge of the envelope: the largest inputs the graph must stay finite
    and accurate on (its latents reach ~1e23 there)."""
    low, high = envelope
    pick_high = np.random.default_rng(seed).random((n, len(low))) < 0.5
    pick_high[0], pick_high[1] = True, False
    return np.where(pick_high, high, low)


def threshold_rows(trees: list, scaler, base_row: np.ndarray, n_inputs: int) -> np.ndarray:
    """Rows whose scaled feature j sits on, and right next to, each split on input feature j of the classifier's
    ``trees`` (``ReferenceModel.trees``).

    sklearn compares float32(x) with float64 thresholds; each split ``t`` gives the float32 values around it,
    mapped back through the scaler, and the float64 neighbours of each raw value.
    """
    rows = []
    mean, scale = scaler.mean_, scaler.scale_
    seen: set[tuple[int, float]] = set()
    for tree in trees:
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
    return np.array(rows)


# --- explaining rows whose answer differs ---------------------------------------------------------------------


def _first_divergence(tree, a: np.ndarray, b: np.ndarray) -> tuple[int, float] | None:
    """(feature, threshold) of the first node where ``a`` and ``b`` (float32) branch apart, or None. sklearn's
    trees go left on ``x <= threshold``; a converter's trees say per node (``convert.trees.Tree.strict``)."""
    strict = getattr(tree, "strict", None)
    node = 0
    while tree.children_left[node] != -1:
        f, thr = tree.feature[node], tree.threshold[node]
        if strict is not None and strict[node]:
            go_a, go_b = a[f] < thr, b[f] < thr
        else:
            go_a, go_b = a[f] <= thr, b[f] <= thr
        if go_a != go_b:
            return int(f), float(thr)
        node = tree.children_left[node] if go_a else tree.children_right[node]
    return None


def explain(reference, ev: Evidence, i: int, got: dict, p_gb_on_got: float, precision: float, bars: Bars) -> dict:
    """Classify one row whose label or probability differs: a tie, a threshold tie, or unexplained (why)."""
    n_inputs = ev.scaled.shape[1]
    a = np.concatenate([ev.scaled[i], ev.ref["latent"][i]]).astype(np.float32)
    b = np.concatenate([ev.scaled[i], got["latent"][i]]).astype(np.float32)
    divergent = []
    for t, tree in enumerate(reference.trees()):
        hit = _first_divergence(tree, a, b)
        if hit is not None:
            divergent.append((t, *hit))
    p_ref, p_got = float(ev.ref["probability"][i]), float(got["probability"][i])
    scale = max(1.0, float(np.abs(ev.truth_latent[i]).max()))
    if not divergent:
        if abs(p_ref - p_got) <= bars.proba_atol:
            return {"kind": "threshold tie", "why": f"the threshold lies between {p_ref:.9g} and {p_got:.9g}"}
        return {"kind": "unexplained", "why": "every tree takes the same branches, yet the probabilities differ"}
    notes = []
    for t, f, thr in divergent:
        d = abs(float(a[f]) - float(b[f]))
        where = f"latent_{f - n_inputs}" if f >= n_inputs else f"input {f}"
        notes.append(f"tree {t}: {where} split {thr:.7g}, original {a[f]:.7g}, onnx {b[f]:.7g} (|d| {d:.2g})")
        if f < n_inputs:
            return {"kind": "unexplained", "why": f"an input split branches differently: {notes[-1]}"}
        if not d <= precision * scale:  # NaN latents are never a tie
            return {
                "kind": "unexplained",
                "why": f"latents differ by more than float32 working precision ({precision * scale:.2g}): {notes[-1]}",
            }
    if not abs(p_gb_on_got - p_got) <= bars.proba_atol:
        return {
            "kind": "unexplained",
            "why": f"the original GB on these latents gives {p_gb_on_got:.7g}, the graph {p_got:.7g}",
        }
    return {"kind": "tie", "why": f"{len(divergent)} tree(s) branch at a latent split: " + "; ".join(notes[:3])}


def _differing_rows(ev: Evidence, got: dict, bars: Bars) -> np.ndarray:
    dp = np.abs(ev.ref["probability"] - got["probability"].astype(np.float64))
    return np.flatnonzero((ev.ref["label"] != got["label"]) | ~(dp <= bars.proba_atol))


# --- running it -----------------------------------------------------------------------------------------------


def _run(predict: Predict, X: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    step = batch or MAX_CALL_ROWS
    if len(X) <= step:
        return predict(X)
    parts = [predict(X[i : i + step]) for i in range(0, len(X), step)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def assess(reference, engine: str, rs: RowSet, ev: Evidence, got: dict, bars: Bars = BARS) -> RowSetResult:
    """Every bar for one engine on one row set."""
    lat_err = latent_error(got["latent"], ev.truth_latent)
    att_err = attention_error(got["attention"], ev.truth_attention)
    failures = accuracy_failures("latent", lat_err, ev.ref_latent_error, bars)
    failures += accuracy_failures("attention", att_err, ev.ref_attention_error, bars)
    precision = float(allowance(ev.ref_latent_error, bars)[-1])
    differing = _differing_rows(ev, got, bars)
    budget = int(bars.max_tie_share * len(ev.X))
    examined = differing[: budget + MAX_LISTED_ROWS]  # past the tie budget the row set fails whatever the rest are
    p_gb = reference.gb_probability(ev.scaled[examined], got["latent"][examined]) if examined.size else []
    listed, ties, unexplained = [], 0, 0
    for i, p in zip(examined, p_gb, strict=True):
        verdict = explain(reference, ev, int(i), got, float(p), precision, bars)
        ties += verdict["kind"] != "unexplained"
        unexplained += verdict["kind"] == "unexplained"
        listed.append(_listing(ev, got, int(i), verdict))
    labels_agree = float(np.mean(ev.ref["label"] == got["label"]))
    astray = int(np.sum(got["label"] != (got["probability"].astype(np.float32) >= np.float32(reference.threshold))))
    if astray:
        failures.append(f"{astray} label(s) do not follow probability >= the threshold {reference.threshold:g}")
    if unexplained:
        failures.append(f"{unexplained} row(s) differ in label or by |dp| > {bars.proba_atol:g} and are no tie")
    if rs.exact_labels and labels_agree < 1.0:
        failures.append(f"labels agree on {labels_agree:.4%} of rows; the bar for these rows is 100%")
    if differing.size > examined.size:
        failures.append(
            f"{differing.size} rows differ in label or by |dp| > {bars.proba_atol:g}; at most {budget} may be ties "
            f"(the first {examined.size} were examined)"
        )
    elif ties > budget:
        failures.append(f"{ties} ties in {len(ev.X)} rows; the bar is {bars.max_tie_share:.1%}")
    listed.sort(key=lambda r: (r["kind"] != "unexplained", -r["dp"]))
    listed += _worst(ev, lat_err, att_err) if any("error at" in f for f in failures) else []
    dp = np.abs(ev.ref["probability"] - got["probability"].astype(np.float64))
    return RowSetResult(
        engine=engine,
        name=rs.name,
        rows=len(ev.X),
        label_agreement=labels_agree,
        max_dp=float(np.nanmax(dp)) if np.isfinite(dp).any() else float("inf"),
        ties=ties,
        unexplained=unexplained,
        latent_error=_qdict(lat_err),
        latent_error_original=_qdict(ev.ref_latent_error),
        attention_error=_qdict(att_err),
        attention_error_original=_qdict(ev.ref_attention_error),
        failures=failures,
        listed=listed[:MAX_LISTED_ROWS],
    )


def _listing(ev: Evidence, got: dict, i: int, verdict: dict) -> dict:
    p_ref, p_got = float(ev.ref["probability"][i]), float(got["probability"][i])
    return {
        "row": i,
        "kind": verdict["kind"],
        "label": [int(ev.ref["label"][i]), int(got["label"][i])],
        "probability": [p_ref, p_got],
        "dp": abs(p_ref - p_got),
        "explanation": verdict["why"],
        "features": ev.X[i].tolist(),
    }


def _worst(ev: Evidence, lat_err: np.ndarray, att_err: np.ndarray, n: int = 5) -> list[dict]:
    """The rows furthest from the truth, for a failed accuracy bar."""
    out = []
    for what, err, ref_err in (
        ("latent", lat_err, ev.ref_latent_error),
        ("attention", att_err, ev.ref_attention_error),
    ):
        for i in np.argsort(-err, kind="stable")[:n]:
            out.append(
                {
                    "row": int(i),
                    "kind": f"worst {what} error",
                    "dp": 0.0,
                    "explanation": f"{what} error {err[i]:.2e} (the original's on this row: {ref_err[i]:.2e})",
                    "features": ev.X[i].tolist(),
                }
            )
    return out


def certify(reference, sources: dict[str, np.ndarray], engines: Sequence[Engine], bars: Bars = BARS) -> dict:
    """Run every engine on its row sets against the original and the truth. Returns the report (a dict)."""
    started = time.perf_counter()
    evidence = {name: Evidence.of(reference, X) for name, X in sources.items()}
    results = []
    for engine in engines:
        for rs in engine.row_sets:
            ev = evidence[rs.source].take(rs.rows)
            got = _run(engine.predict, ev.X, rs.batch)
            results.append(assess(reference, engine.name, rs, ev, got, bars))
    failures = [f"{r.engine} / {r.name}: {f}" for r in results for f in r.failures]
    return {
        "passed": not failures,
        "failures": failures,
        "bars": {**asdict(bars), "quantiles": list(QUANTILES)},
        "rows": sum(len(X) for X in sources.values()),
        "seconds": round(time.perf_counter() - started, 1),
        "row_sets": [asdict(r) for r in results],
    }


def table(report: dict) -> str:
    """The certificate as `make convert` prints it: one line per engine and row set."""
    head = (
        f"{'engine':<28}{'row set':<22}{'rows':>7}{'labels':>10}{'max |dp|':>10}{'ties':>6}{'unexpl.':>8}"
        f"{'lat err max':>13}{'(orig.)':>10}{'att err max':>13}{'(orig.)':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in report["row_sets"]:
        lines.append(
            f"{r['engine']:<28}{r['name']:<22}{r['rows']:>7}{r['label_agreement']:>10.4%}{r['max_dp']:>10.1e}"
            f"{r['ties']:>6}{r['unexplained']:>8}{r['latent_error']['1']:>13.1e}{r['latent_error_original']['1']:>10.1e}"
            f"{r['attention_error']['1']:>13.1e}{r['attention_error_original']['1']:>10.1e}"
        )
    verdict = "PASS" if report["passed"] else "FAIL"
    lines.append(f"certificate: {verdict} on {report['rows']} distinct rows in {report['seconds']} s")
    lines += [f"  - {f}" for f in report["failures"]]
    return "\n".join(lines)
