"""Cross-validation and a budgeted hyperparameter search for the GB stage (``diecast train``).

What is cross-validated is the GB stage exactly as training ships it, on fixed features (the 30 scaled readings
+ the 12 latents of the frozen encoder): a GB on a stratified inner training part, its decision threshold picked
by F1 on the inner validation part, scored on the held-out fold (``ThresholdedGB``). The encoder is not refitted
per fold: it costs ~90 s per fit here, against ~20 s for the GB. Nothing here touches the model that training
ships; the final GB is fitted afterwards on the full training split, as before.

Every constant (folds, search space, rule) lives in ``convert.train``; this module only takes arguments.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from math import ceil, floor, log

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score, f1_score, make_scorer, precision_score, recall_score
from sklearn.model_selection import ParameterGrid, ParameterSampler, StratifiedKFold, cross_validate, train_test_split

from convert import kinds

# training's metric names -> sklearn scorers; the thresholded ones score ``predict`` (the tuned threshold)
SCORERS = {
    "f1_score": make_scorer(f1_score, zero_division=0),
    "roc_auc": "roc_auc",
    "accuracy": make_scorer(accuracy_score),
    "precision": make_scorer(precision_score, zero_division=0),
    "recall": make_scorer(recall_score, zero_division=0),
}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _progress_on_stderr() -> Iterator[None]:
    """sklearn prints its verbose progress to stdout; the CLI keeps stdout for results."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def f1_scores(y: np.ndarray, proba: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """F1 at each threshold of ``grid``, as sklearn's ``f1_score(y, proba >= t, zero_division=0)`` computes it
    (2 tp / (positives + predicted positives) in float64, 0 when both are 0), for the whole grid at once."""
    truth = np.asarray(y) == 1
    predicted = np.asarray(proba)[None, :] >= np.asarray(grid)[:, None]  # (thresholds, rows)
    tp = (predicted & truth).sum(axis=1).astype(np.float64)
    denominator = float(truth.sum()) + predicted.sum(axis=1).astype(np.float64)
    return np.where(denominator > 0, 2.0 * tp / np.where(denominator > 0, denominator, 1.0), 0.0)


def best_f1_threshold(y: np.ndarray, proba: np.ndarray, grid: np.ndarray) -> float:
    """The decision threshold in ``grid`` with the best F1 on (y, proba); the first one on a tie."""
    return float(grid[int(np.argmax(f1_scores(y, proba, grid)))])


class ThresholdedGB(ClassifierMixin, BaseEstimator):
    """The GB stage as training ships it, as one scikit-learn classifier.

    ``fit`` splits off ``val_share`` of its rows (stratified), fits ``GradientBoostingClassifier(**gb_params)`` on
    the rest and picks the threshold on ``thresholds`` with the best F1 on the split-off part; ``predict`` applies
    it. The GB's hyperparameters travel as one dict, so that a search candidate is one value of ``gb_params``.
    """

    def __init__(self, gb_params=None, val_share=0.2, thresholds=(0.5,), random_state=None, kind=kinds.DEFAULT_KIND):
        self.gb_params = gb_params
        self.val_share = val_share
        self.thresholds = thresholds
        self.random_state = random_state
        self.kind = kind

    def fit(self, X: np.ndarray, y: np.ndarray) -> ThresholdedGB:
        X_fit, X_val, y_fit, y_val = train_test_split(
            X, y, test_size=self.val_share, random_state=self.random_state, stratify=y
        )
        self.gb_ = kinds.get(self.kind).build(dict(self.gb_params or {}), self.random_state)
        self.gb_.fit(X_fit, y_fit)
        self.threshold_ = best_f1_threshold(y_val, self.gb_.predict_proba(X_val)[:, 1], np.asarray(self.thresholds))
        self.classes_ = self.gb_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.gb_.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= self.threshold_).astype(np.int64)


@dataclass(frozen=True)
class Protocol:
    """How a GB candidate is judged: the shipped threshold procedure on the same stratified folds."""

    folds: int
    seed: int
    val_share: float
    thresholds: tuple[float, ...]
    kind: str = kinds.DEFAULT_KIND  # the classifier (convert.kinds), GB unless told

    def estimator(self, gb_params: dict) -> ThresholdedGB:
        return ThresholdedGB(dict(gb_params), self.val_share, self.thresholds, self.seed, self.kind)

    def splitter(self) -> StratifiedKFold:
        return StratifiedKFold(n_splits=self.folds, shuffle=True, random_state=self.seed)


def _summary(values: np.ndarray) -> dict:
    """mean, sample sd (ddof 1: k folds are a sample of the data's possible splits), min, max and the folds."""
    return {
        "mean": round(float(values.mean()), 4),
        "sd": round(float(values.std(ddof=1)), 4),
        "min": round(float(values.min()), 4),
        "max": round(float(values.max()), 4),
        "folds": [round(float(v), 4) for v in values],
    }


def cross_validate_gb(F: np.ndarray, y: np.ndarray, gb_params: dict, protocol: Protocol) -> dict:
    """Stratified k-fold CV of the GB stage on features ``F`` (n, 42) float64 and labels ``y`` (n,).

    Returns each metric's mean, sd, min, max and per-fold values, the folds' rows and defects (to show the
    stratification), the mean fit time per fold (the search's time model) and the seconds spent.
    """
    started = time.perf_counter()
    folds = list(protocol.splitter().split(F, y))
    _log(f"cross-validation: {protocol.folds} stratified folds of {len(y)} rows, GB {gb_params}")
    with _progress_on_stderr():
        # Folds are independent fits: one per core (each GB is single-threaded; the scores do not depend on it).
        jobs = min(len(folds), os.cpu_count() or 1)
        scores = cross_validate(
            protocol.estimator(gb_params), F, y, cv=folds, scoring=SCORERS, verbose=3, error_score="raise", n_jobs=jobs
        )
    return {
        "folds": protocol.folds,
        "rows": len(y),
        **{name: _summary(scores[f"test_{name}"]) for name in SCORERS},
        "fold_rows": [len(test) for _, test in folds],
        "fold_defects": [int(y[test].sum()) for _, test in folds],
        "fit_seconds_per_fold": round(float(np.mean(scores["fit_time"])), 2),
        "seconds": round(time.perf_counter() - started, 1),
    }


# --- the search ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchSettings:
    """What the search may try (``convert.train`` holds the values) and its time budget in seconds."""

    budget: float
    default: dict
    space: dict
    max_candidates: int
    factor: int
    min_rows: int
    kind: str = kinds.DEFAULT_KIND

    def describe(self) -> dict:
        return {
            "budget_seconds": self.budget,
            "method": f"HalvingGridSearchCV over sampled candidates (ParameterSampler), factor {self.factor}",
            "space": self.space,
            "default": dict(self.default),
            "rule": "adopt the best candidate only if its mean CV F1 beats the default's by more than the sum of "
            "their standard errors (sd / sqrt(folds)), both on the same full folds",
        }


def significant_gain(best: list[float], default: list[float]) -> dict:
    """The search's rule: the best candidate replaces the default only if its mean CV F1 beats the default's by
    more than the sum of their standard errors (sd / sqrt(folds), sample sd). Returns the figures and the verdict.
    """
    b, d = np.asarray(best, dtype=float), np.asarray(default, dtype=float)
    se_b, se_d = b.std(ddof=1) / np.sqrt(len(b)), d.std(ddof=1) / np.sqrt(len(d))
    gain, margin = float(b.mean() - d.mean()), float(se_b + se_d)
    return {"gain": round(gain, 4), "margin": round(margin, 4), "significant": bool(gain > margin)}


def same_params(a: dict, b: dict, kind: str = kinds.DEFAULT_KIND) -> bool:
    """Whether two hyperparameter dicts configure the same classifier (unset keys take the library's defaults)."""
    build = kinds.get(kind).build
    return build(dict(a), 0).get_params() == build(dict(b), 0).get_params()


def candidates(default: dict, space: dict, n: int, seed: int, kind: str = kinds.DEFAULT_KIND) -> list[dict]:
    """The default first, then up to ``n - 1`` distinct draws from ``space`` (sklearn's ParameterSampler)."""
    # a space of lists is sampled without replacement: never ask for more draws than it holds
    size = len(ParameterGrid(space)) if all(isinstance(v, list) for v in space.values()) else n
    drawn = ParameterSampler(space, n_iter=min(n, size), random_state=seed)
    drawn = [c for c in drawn if not same_params(c, default, kind)]
    return [dict(default), *drawn[: n - 1]]


def relative_cost(params: dict, default: dict, kind: str = kinds.DEFAULT_KIND) -> float:
    """A fit's time relative to the default's: tree building scales with trees x depth (or leaves) x rows used."""
    cost = kinds.get(kind).cost
    return cost(params) / cost(default)


@dataclass(frozen=True)
class Schedule:
    """Successive halving's rounds, as HalvingGridSearchCV will run them (its own arithmetic, mirrored)."""

    candidates: int
    min_rows: int
    rounds: list[tuple[int, int]]  # (candidates, rows) per round

    @classmethod
    def plan(cls, n_candidates: int, n_rows: int, factor: int, min_rows: int) -> Schedule | None:
        """The rounds for ``n_candidates``, the last one on all but at most ``factor**(rounds - 1)`` rows, the first
        on at least ``min_rows``; None when the rows cannot hold that many rounds (sklearn would then stop short
        and pick its winner on a fraction of the data)."""
        required = 1 + floor(log(n_candidates, factor))
        first = n_rows // factor ** (required - 1)  # as sklearn's 'exhaust': the last round uses ~all rows
        if first < min_rows:
            return None
        rounds = [(ceil(n_candidates / factor**i), first * factor**i) for i in range(required)]
        return cls(n_candidates, first, rounds)

    def predicted_seconds(self, fit_seconds: float, fold_rows: int, folds: int, cost: float) -> float:
        """``fit_seconds`` is the default's fit on ``fold_rows`` rows; ``cost`` the candidates' mean relative cost."""
        return sum(c * folds * fit_seconds * cost * (rows / fold_rows) for c, rows in self.rounds)


def _predict(pool: list[dict], default: dict, cv: dict, plan: Schedule, kind: str) -> tuple[float, float]:
    """Predicted seconds of ``plan`` on ``pool``, and of confirming its winner (the dearest candidate, to be safe)."""
    folds = cv["folds"]
    costs = [relative_cost(c, default, kind) for c in pool]
    fold_rows = cv["rows"] * (folds - 1) / folds
    search = plan.predicted_seconds(cv["fit_seconds_per_fold"], fold_rows, folds, float(np.mean(costs)))
    confirm = folds * cv["fit_seconds_per_fold"] * max(costs)
    return round(search, 1), round(confirm, 1)


def _size(pool: list[dict], settings: SearchSettings, cv: dict) -> tuple[Schedule | None, float, float]:
    """The largest prefix of ``pool`` (at least the default and one other) whose search fits the rows and the
    budget; else None, with the smallest search's predicted seconds."""
    sized = []
    for n in range(2, len(pool) + 1):
        plan = Schedule.plan(n, cv["rows"], settings.factor, settings.min_rows)
        if plan is not None:
            sized.append((plan, *_predict(pool[:n], settings.default, cv, plan, settings.kind)))
    fitting = [s for s in sized if s[1] + s[2] <= settings.budget]
    if fitting:
        return fitting[-1]
    return (None, *sized[0][1:]) if sized else (None, float("inf"), float("inf"))


def _rounds(search) -> list[dict]:
    """Each candidate's scores per round, from HalvingGridSearchCV.cv_results_."""
    res = search.cv_results_
    by_candidate: dict[str, dict] = {}
    for i, params in enumerate(res["params"]):
        key = repr(sorted(params["gb_params"].items()))
        entry = by_candidate.setdefault(key, {"params": params["gb_params"], "rounds": []})
        entry["rounds"].append(
            {
                "rows": int(res["n_resources"][i]),
                "f1_mean": round(float(res["mean_test_score"][i]), 4),
                "f1_sd": round(float(res["std_test_score"][i]), 4),
            }
        )
    return list(by_candidate.values())


def search_gb(F: np.ndarray, y: np.ndarray, protocol: Protocol, cv: dict, settings: SearchSettings) -> dict:
    """Successive halving (HalvingGridSearchCV) over ``settings.space`` under ``settings.budget`` seconds, then
    the rule against the default's cross-validation ``cv`` (same folds). Returns the record for metadata.json,
    with ``params``: the GB hyperparameters to train the final model with (the default unless significant).
    """
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (HalvingGridSearchCV is experimental)
    from sklearn.model_selection import HalvingGridSearchCV

    started = time.perf_counter()
    pool = candidates(settings.default, settings.space, settings.max_candidates, protocol.seed, settings.kind)
    plan, predicted, confirm = _size(pool, settings, cv)
    record = settings.describe() | {"default_cv_f1": cv["f1_score"], "params": dict(settings.default)}
    if plan is None:
        reason = (
            f"budget {settings.budget:g} s is below the smallest search's predicted {predicted + confirm:.0f} s "
            f"(2 candidates: {predicted:.0f} s + {confirm:.0f} s to confirm)"
        )
        _log(f"search: skipped, {reason}")
        return record | {"decision": "skipped", "reason": reason, "candidates": [], "seconds": 0.0}
    _log(
        f"search: {plan.candidates} candidates (the default first), rounds {plan.rounds} (candidates, rows), "
        f"predicted {predicted:.0f} s + {confirm:.0f} s to confirm a winner, budget {settings.budget:g} s"
    )
    search = HalvingGridSearchCV(
        protocol.estimator(settings.default),
        [{"gb_params": [c]} for c in pool[: plan.candidates]],
        factor=settings.factor,
        min_resources=plan.min_rows,
        cv=protocol.splitter(),
        scoring=SCORERS["f1_score"],
        refit=False,
        return_train_score=False,
        random_state=protocol.seed,
        error_score="raise",
        verbose=3,
    )
    with _progress_on_stderr():
        search.fit(F, y)
    best = search.best_params_["gb_params"]
    record |= {
        "predicted_seconds": predicted,
        # as sklearn ran them; Schedule.plan mirrors its arithmetic to size the search (a test holds them equal)
        "rounds": [[int(c), int(r)] for c, r in zip(search.n_candidates_, search.n_resources_, strict=True)],
        "candidates": _rounds(search),
        "best": best,
        "search_seconds": round(time.perf_counter() - started, 1),
    }
    record |= _decide(F, y, protocol, cv, settings, best, started)
    record["seconds"] = round(time.perf_counter() - started, 1)
    _log(f"search: {record['decision']}: {record['reason']} ({record['seconds']:.0f} s)")
    return record


def _decide(F, y, protocol: Protocol, cv: dict, settings: SearchSettings, best: dict, started: float) -> dict:
    """Confirm the search's winner on the full folds and apply ``significant_gain`` against the default."""
    if same_params(best, settings.default, settings.kind):
        return {"decision": "kept default", "reason": "the default won the search"}
    left = settings.budget - (time.perf_counter() - started)
    need = protocol.folds * cv["fit_seconds_per_fold"] * relative_cost(best, settings.default, settings.kind)
    if need > left:
        return {"decision": "kept default", "reason": f"no budget left to confirm {best} ({need:.0f} s > {left:.0f} s)"}
    _log(f"search: confirming {best} on the full {protocol.folds} folds")
    best_cv = cross_validate_gb(F, y, best, protocol)["f1_score"]
    rule = significant_gain(best_cv["folds"], cv["f1_score"]["folds"])
    verdict = (
        f"CV F1 {best_cv['mean']:.4f} vs the default's {cv['f1_score']['mean']:.4f}: gain {rule['gain']:+.4f} "
        f"{'>' if rule['significant'] else '<='} the sum of standard errors {rule['margin']:.4f}"
    )
    decision = "adopted" if rule["significant"] else "kept default"
    return {"best_cv_f1": best_cv, "rule_result": rule, "decision": decision, "reason": verdict} | (
        {"params": dict(best)} if rule["significant"] else {}
    )
