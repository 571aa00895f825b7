"""The model kinds: every classifier the originals may hold on 30 scaled readings + the latents, in one table.

A kind says how to build its classifier (``build``), its default hyperparameters and search space, how to save and
load it in its library's own format (never a pickle for the libraries that have one), its probability of a
defect (``proba``: the library's own ``predict_proba``, the certificate's oracle), how the field's converter turns
its trees into ONNX (``to_onnx``: a binary ``TreeEnsembleClassifier``), and its library's version.

The converters (each emits float32 thresholds; the certificate holds every one to the library's own answers):

- ``gradient_boosting``, ``random_forest``: skl2onnx; thresholds nudged with ``nextafter`` so that float32 inputs
  branch as sklearn's trees, which compare ``float32(x)`` with float64 thresholds. GB's base score is its prior's
  log-odds; the forest's leaves hold class shares divided by the number of trees (no base score).
- ``xgboost``: onnxmltools; XGBoost itself casts inputs to float32 and stores float32 split values, compared with
  ``<`` (BRANCH_LT), so the ONNX trees are its own; the base score is written as the ensemble's base value.
- ``lightgbm``: onnxmltools; LightGBM compares float64 inputs with float64 thresholds (``<=``), which the converter
  rounds to float32: a reading between the two roundings would branch apart; the split-threshold rows test it.
- ``catboost``: CatBoost's own ONNX export (symmetric trees, float32 borders, ``x > border`` goes right).

Categorical handling is off for every kind: the inputs are a float array with no categorical columns declared
(LightGBM's ``categorical_feature`` and XGBoost's ``enable_categorical`` apply to pandas categories only, CatBoost's
``cat_features`` is not given). Every library runs single-threaded and seeded: one seed gives one model.

Standard library only at import (the command line's ``--help`` lists the kinds); each library is imported when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_KIND = "gradient_boosting"
DEFAULT_LATENT_DIM = 12
LATENT_DIMS = (4, 8, 12, 16)


@dataclass(frozen=True)
class Kind:
    name: str
    short: str  # the model_version's suffix: v1.0_12D_GB
    file: str  # the classifier's file in deployment_models/<version>/
    library: str  # the module whose __version__ metadata.json records
    default: dict  # the hyperparameters trained unless the search shows a significant gain
    space: dict  # the search space (--search-budget)
    build: Callable[[dict, int], object]  # (hyperparameters, seed) -> an unfitted sklearn-style classifier
    save: Callable[[object, Path], None]
    load: Callable[[Path], object]
    proba: Callable[[object, object], object]  # (model, X (n, d) float64) -> P(defect) (n,) float64
    to_onnx: Callable[[object, int], object]  # (model, inputs) -> onnx.ModelProto with a TreeEnsembleClassifier
    cost: Callable[[dict], float]  # relative tree-building work of a hyperparameter set (the search's time model)
    small: dict = field(default_factory=dict)  # a small run's hyperparameters (the tests, the quick ablation)
    decision_is_log_odds: bool = False  # its decision_function is the log-odds itself (GB): no exp/log round trip

    def library_version(self) -> str:
        return importlib.import_module(self.library).__version__

    def log_odds(self, model, X):
        """The log-odds of defect, (n,) float64: the decision function where it is one, else the logit of the
        kind's own probability, clipped as the served explanation clips the graph's."""
        import numpy as np

        from explain import shapley

        if self.decision_is_log_odds:
            return np.asarray(model.decision_function(X), dtype=np.float64)
        return shapley.log_odds(self.proba(model, X))


def _target_opset() -> dict:
    from convert import graph

    return {"": graph.OPSET, "ai.onnx.ml": graph.ML_OPSET}


def _float_input(n_inputs: int, converter: str = "skl2onnx") -> list:
    """The trees' input, float32 (n, inputs), in the type classes of ``converter`` (each checks its own)."""
    if converter == "onnxmltools":
        from onnxmltools.convert.common.data_types import FloatTensorType
    else:
        from skl2onnx.common.data_types import FloatTensorType

    return [("gb_input", FloatTensorType([None, n_inputs]))]


# --- scikit-learn: gradient boosting, random forest (joblib, as the original deployment stores them) -------------


def _joblib_save(model, path: Path) -> None:
    import joblib

    joblib.dump(model, path)


def _joblib_load(path: Path):
    import joblib

    return joblib.load(path)


def _sklearn_proba(model, X):
    return model.predict_proba(X)[:, 1]


def _skl2onnx(model, n_inputs: int):
    from skl2onnx import convert_sklearn

    return convert_sklearn(
        model,
        initial_types=_float_input(n_inputs),
        target_opset=_target_opset(),
        options={id(model): {"zipmap": False}},
    )


def _gb(params: dict, seed: int):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(**params, random_state=seed)


def _rf(params: dict, seed: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(**params, random_state=seed, n_jobs=1)


def _boosting_cost(depth_key: str, trees_key: str, defaults: dict) -> Callable[[dict], float]:
    def cost(params: dict) -> float:
        full = {**defaults, **params}
        return full[trees_key] * full[depth_key] * full.get("subsample", 1.0)

    return cost


# --- XGBoost (its JSON), LightGBM (its text model), CatBoost (its .cbm) ------------------------------------------


def _xgb(params: dict, seed: int):
    from xgboost import XGBClassifier

    return XGBClassifier(**params, random_state=seed, n_jobs=1, tree_method="exact", enable_categorical=False)


def _xgb_save(model, path: Path) -> None:
    model.save_model(path)


def _xgb_load(path: Path):
    from xgboost import XGBClassifier

    model = XGBClassifier()
    model.load_model(path)
    return model


def _xgb_onnx(model, n_inputs: int):
    from onnxmltools import convert_xgboost

    return convert_xgboost(
        model, initial_types=_float_input(n_inputs, "onnxmltools"), target_opset=_target_opset()["ai.onnx.ml"]
    )


def _lgbm(params: dict, seed: int):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(**params, random_state=seed, n_jobs=1, deterministic=True, force_row_wise=True, verbose=-1)


def _lgbm_save(model, path: Path) -> None:
    booster = getattr(model, "booster_", model)
    booster.save_model(path)


def _lgbm_load(path: Path):
    import lightgbm

    return lightgbm.Booster(model_file=str(path))


def _lgbm_proba(model, X):
    booster = getattr(model, "booster_", model)
    return booster.predict(X)


def _lgbm_onnx(model, n_inputs: int):
    from onnxmltools import convert_lightgbm

    booster = getattr(model, "booster_", model)
    proto = convert_lightgbm(
        booster,
        initial_types=_float_input(n_inputs, "onnxmltools"),
        target_opset=_target_opset()["ai.onnx.ml"],
        zipmap=False,
    )
    _float32_below(proto, booster)
    return proto


def _lgbm_splits(booster) -> dict[tuple[int, int], set[float]]:
    """(tree, feature) -> the float64 thresholds of its splits, from LightGBM's own dump."""
    out: dict[tuple[int, int], set[float]] = {}

    def walk(node: dict, tree: int) -> None:
        if "split_feature" in node:
            out.setdefault((tree, node["split_feature"]), set()).add(float(node["threshold"]))
            walk(node["left_child"], tree)
            walk(node["right_child"], tree)

    for info in booster.dump_model()["tree_info"]:
        walk(info["tree_structure"], info["tree_index"])
    return out


def _float32_below(proto, booster) -> None:
    """Replace each float32 threshold onnxmltools rounded to nearest by the largest float32 <= LightGBM's float64
    one, as skl2onnx does for sklearn: then ``x <= t32`` holds for a float32 x exactly when ``x <= t`` does."""
    import numpy as np

    splits = _lgbm_splits(booster)
    [node] = [n for n in proto.graph.node if n.op_type == "TreeEnsembleClassifier"]
    attr = {a.name: a for a in node.attribute}
    trees, feats, modes = attr["nodes_treeids"].ints, attr["nodes_featureids"].ints, attr["nodes_modes"].strings
    values = attr["nodes_values"].floats
    for i, (tree, feat, mode) in enumerate(zip(trees, feats, modes, strict=True)):
        if mode != b"BRANCH_LEQ":
            continue
        rounded = np.float32(values[i])
        below = {_below(t) for t in splits.get((tree, feat), ()) if np.float32(t) == rounded}
        if len(below) != 1:
            raise ValueError(f"LightGBM tree {tree}: no single float64 split of feature {feat} rounds to {rounded}")
        values[i] = float(below.pop())


def _below(t: float):
    """The largest float32 <= t."""
    import numpy as np

    f = np.float32(t)
    return np.nextafter(f, np.float32(-np.inf)) if float(f) > t else f


def _cb(params: dict, seed: int):
    from catboost import CatBoostClassifier

    return CatBoostClassifier(**params, random_seed=seed, thread_count=1, verbose=0, allow_writing_files=False)


def _cb_save(model, path: Path) -> None:
    model.save_model(str(path))


def _cb_load(path: Path):
    from catboost import CatBoostClassifier

    return CatBoostClassifier().load_model(str(path))


def _cb_onnx(model, n_inputs: int):
    import tempfile

    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catboost.onnx"
        model.save_model(str(path), format="onnx")
        return onnx.load(path)


_GB_DEFAULT = {"n_estimators": 200, "max_depth": 6, "learning_rate": 0.1, "subsample": 1.0}
_BOOST_SPACE = {
    "n_estimators": [100, 150, 200, 300],
    "max_depth": [3, 4, 5, 6, 7, 8],
    "learning_rate": [0.03, 0.05, 0.1, 0.2],
    "subsample": [0.7, 0.85, 1.0],
}

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "gradient_boosting",
            "GB",
            "gradient_boosting_model.pkl",
            "sklearn",
            _GB_DEFAULT,
            {**_BOOST_SPACE, "min_samples_leaf": [1, 5, 20]},
            _gb,
            _joblib_save,
            _joblib_load,
            _sklearn_proba,
            _skl2onnx,
            _boosting_cost("max_depth", "n_estimators", _GB_DEFAULT),
            small={"n_estimators": 30, "max_depth": 4, "learning_rate": 0.1, "subsample": 1.0},
            decision_is_log_odds=True,
        ),
        Kind(
            "random_forest",
            "RF",
            "random_forest_model.pkl",
            "sklearn",
            {"n_estimators": 200, "max_depth": 12, "min_samples_leaf": 1},
            {"n_estimators": [100, 200, 300], "max_depth": [8, 12, 16], "min_samples_leaf": [1, 5, 20]},
            _rf,
            _joblib_save,
            _joblib_load,
            _sklearn_proba,
            _skl2onnx,
            _boosting_cost("max_depth", "n_estimators", {"n_estimators": 200, "max_depth": 12}),
            small={"n_estimators": 30, "max_depth": 6, "min_samples_leaf": 5},
        ),
        Kind(
            "xgboost",
            "XGB",
            "xgboost_model.json",
            "xgboost",
            _GB_DEFAULT,
            _BOOST_SPACE,
            _xgb,
            _xgb_save,
            _xgb_load,
            _sklearn_proba,
            _xgb_onnx,
            _boosting_cost("max_depth", "n_estimators", _GB_DEFAULT),
            small={"n_estimators": 30, "max_depth": 4, "learning_rate": 0.1, "subsample": 1.0},
        ),
        Kind(
            "lightgbm",
            "LGBM",
            "lightgbm_model.txt",
            "lightgbm",
            {"n_estimators": 200, "num_leaves": 31, "learning_rate": 0.1, "subsample": 1.0},
            {
                "n_estimators": [100, 150, 200, 300],
                "num_leaves": [15, 31, 63],
                "learning_rate": [0.03, 0.05, 0.1, 0.2],
                "min_child_samples": [5, 20, 50],
            },
            _lgbm,
            _lgbm_save,
            _lgbm_load,
            _lgbm_proba,
            _lgbm_onnx,
            _boosting_cost("num_leaves", "n_estimators", {"n_estimators": 200, "num_leaves": 31}),
            small={"n_estimators": 30, "num_leaves": 15, "learning_rate": 0.1, "subsample": 1.0},
        ),
        Kind(
            "catboost",
            "CB",
            "catboost_model.cbm",
            "catboost",
            {"iterations": 200, "depth": 6, "learning_rate": 0.1},
            {"iterations": [100, 200, 300], "depth": [4, 6, 8], "learning_rate": [0.03, 0.05, 0.1, 0.2]},
            _cb,
            _cb_save,
            _cb_load,
            _sklearn_proba,
            _cb_onnx,
            _boosting_cost("depth", "iterations", {"iterations": 200, "depth": 6}),
            small={"iterations": 30, "depth": 4, "learning_rate": 0.1},
        ),
    )
}


class KindError(ValueError):
    """An unknown kind or latent size, named with the choices."""


def get(name: str) -> Kind:
    if name not in KINDS:
        raise KindError(f"unknown model kind {name!r}; choose one of {', '.join(KINDS)}")
    return KINDS[name]


def encoder_file(latent_dim: int) -> str:
    return f"autoencoder_latent{latent_dim}.pth"


def of(metadata: dict) -> tuple[Kind, int]:
    """The kind and latent size a version's metadata.json names (a version without them is the original GB, 12)."""
    model = metadata.get("model", {})
    return get(model.get("kind", DEFAULT_KIND)), int(model.get("latent_dim", DEFAULT_LATENT_DIM))


def describe(kind: Kind, latent_dim: int) -> dict:
    """metadata.json's ``model`` section."""
    return {"kind": kind.name, "latent_dim": latent_dim, "file": kind.file, kind.library: kind.library_version()}
