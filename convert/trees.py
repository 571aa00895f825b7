"""Tree ensembles as the converters write them: a binary ``TreeEnsembleClassifier`` read as the fused graph's
``TreeEnsembleRegressor`` (``regressor_attributes``), and as trees the certificate can walk (``of``).

Every converter of ``convert.kinds`` emits one of two binary forms:

- one score per leaf for one class (GB, XGBoost, LightGBM, CatBoost), turned into a probability by ``LOGISTIC``:
  the regressor gives the raw score and the graph applies ``Sigmoid`` (link ``logistic``);
- both classes' shares per leaf, summed without a transform (random forest): the regressor keeps the defect
  class's shares, which sum to the probability itself (link ``identity``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import helper, numpy_helper

LOGISTIC, IDENTITY = "logistic", "identity"
# node mode -> (the branch taken when the comparison holds is the left one, the comparison is strict)
_MODES = {
    "BRANCH_LEQ": (True, False),
    "BRANCH_LT": (True, True),
    "BRANCH_GT": (False, False),
    "BRANCH_GTE": (False, True),
}


def classifier_attributes(model) -> dict:
    """The attributes of the one ``TreeEnsembleClassifier`` in a converter's ONNX model."""
    found = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    if len(found) != 1:
        raise ValueError(f"expected one TreeEnsembleClassifier in the converter's graph, found {len(found)}")
    attrs = {a.name: helper.get_attribute_value(a) for a in found[0].attribute}
    if "nodes_values_as_tensor" in attrs:
        attrs["nodes_values"] = numpy_helper.to_array(attrs.pop("nodes_values_as_tensor")).astype(np.float32).tolist()
    return attrs


def regressor_attributes(model) -> tuple[dict, str]:
    """The converter's binary classifier as a ``TreeEnsembleRegressor`` (the same trees, leaf weights and base
    value) and the link that turns its output into P(defect). It runs faster than the classifier, which also
    builds both class columns and a label of its own."""
    attrs = classifier_attributes(model)
    classes, labels = set(attrs["class_ids"]), list(attrs.get("classlabels_int64s", []))
    transform = attrs.get("post_transform", b"NONE")
    transform = transform.decode() if isinstance(transform, bytes) else transform
    if labels != [0, 1]:
        raise ValueError(f"expected a binary classifier with labels [0, 1], got {labels}")
    out = {k: v for k, v in attrs.items() if k.startswith("nodes_")}
    out.update(n_targets=1, aggregate_function="SUM", post_transform="NONE")
    keep = np.ones(len(attrs["class_ids"]), dtype=bool)
    if len(classes) == 1 and transform in ("LOGISTIC", "NONE"):
        link = LOGISTIC if transform == "LOGISTIC" else IDENTITY
    elif classes == {0, 1} and transform in ("LOGISTIC", "NONE"):
        link = LOGISTIC if transform == "LOGISTIC" else IDENTITY
        keep = np.asarray(attrs["class_ids"]) == 1
    else:
        raise ValueError(f"unsupported binary tree ensemble: classes {sorted(classes)}, post_transform {transform}")
    pick = lambda name: [v for v, k in zip(attrs[name], keep, strict=True) if k]  # noqa: E731
    out.update(
        target_ids=[0] * int(keep.sum()),
        target_nodeids=pick("class_nodeids"),
        target_treeids=pick("class_treeids"),
        target_weights=pick("class_weights"),
    )
    if "base_values" in attrs:
        out["base_values"] = attrs["base_values"]
    return out, link


@dataclass(frozen=True)
class Tree:
    """One tree in sklearn's layout (node 0 the root, -1 children at leaves), with each node's comparison:
    ``strict[i]`` means go left when ``x < threshold``, else when ``x <= threshold``."""

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    strict: np.ndarray


def _tree(nodes: dict[int, tuple]) -> Tree:
    """``nodes``: node id -> (mode, feature, value, true id, false id), re-indexed from the root down."""
    children = {c for mode, _, _, t, f in nodes.values() if mode != "LEAF" for c in (t, f)}
    [root] = [n for n in nodes if n not in children]
    order, index = [root], {root: 0}
    for node in order:
        mode, _, _, t, f = nodes[node]
        for child in (t, f) if mode != "LEAF" else ():
            index[child] = len(order)
            order.append(child)
    n = len(order)
    left, right, feature = np.full(n, -1), np.full(n, -1), np.full(n, -2)
    threshold, strict = np.zeros(n), np.zeros(n, dtype=bool)
    for i, node in enumerate(order):
        mode, feat, value, t, f = nodes[node]
        if mode == "LEAF":
            continue
        if mode not in _MODES:
            raise ValueError(f"unsupported tree node mode {mode}")
        true_left, strict[i] = _MODES[mode]
        left[i], right[i] = (index[t], index[f]) if true_left else (index[f], index[t])
        feature[i], threshold[i] = feat, value
    return Tree(left, right, feature, threshold, strict)


def from_onnx(model) -> list[Tree]:
    """The trees of a converter's ONNX ``TreeEnsembleClassifier``."""
    a = classifier_attributes(model)
    by_tree: dict[int, dict[int, tuple]] = {}
    columns = ("nodes_treeids", "nodes_nodeids", "nodes_modes", "nodes_featureids", "nodes_values")
    columns += ("nodes_truenodeids", "nodes_falsenodeids")
    for tree, node, mode, feat, value, t, f in zip(*(a[c] for c in columns), strict=True):
        mode = mode.decode() if isinstance(mode, bytes) else mode
        by_tree.setdefault(tree, {})[node] = (mode, feat, value, t, f)
    return [_tree(by_tree[t]) for t in sorted(by_tree)]


def of(kind, model, n_inputs: int) -> list:
    """The classifier's trees: scikit-learn's own for GB and the forest, else its converter's."""
    if kind.name == "gradient_boosting":
        return [est.tree_ for est in model.estimators_.ravel()]
    if kind.name == "random_forest":
        return [est.tree_ for est in model.estimators_]
    return from_onnx(kind.to_onnx(model, n_inputs))
