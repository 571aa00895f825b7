"""Can two certified models be compared on the same rows? Only if their manifests agree on the input contract.

Compared: the manifest format, the graph's input (name, shape, dtype), its outputs (names, dtypes) and the
feature list (names and order). Training ranges, thresholds and metrics may differ: that is what a new model is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_LISTED = 10  # names listed in one message before "(+k more)"


class IncompatibleModelsError(ValueError):
    """The two manifests disagree on features or input contract; the message names each difference."""


def _listing(names: list[str]) -> str:
    return ", ".join(names[:MAX_LISTED]) + (f" (+{len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else "")


def _feature_differences(old: list[str], new: list[str], old_name: str, new_name: str) -> list[str]:
    missing, extra = sorted(set(old) - set(new)), sorted(set(new) - set(old))
    out = []
    if missing:
        out.append(f"features only in {old_name}: {_listing(missing)}")
    if extra:
        out.append(f"features only in {new_name}: {_listing(extra)}")
    if not out and old != new:
        i = next(i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b)
        out.append(f"feature order differs from position {i}: {old_name} has {old[i]!r}, {new_name} has {new[i]!r}")
    return out


def differences(old: Mapping[str, Any], new: Mapping[str, Any], names: tuple[str, str] | None = None) -> list[str]:
    """Each disagreement on the input contract between two manifests, in words; empty when compatible.
    ``names`` label the two models in the messages (default: their manifests' versions)."""
    a, b = names or (old.get("version", "OLD"), new.get("version", "NEW"))
    out = []
    for key in ("format", "input"):
        if old.get(key) != new.get(key):
            out.append(f"{key}: {a} has {old.get(key)!r}, {b} has {new.get(key)!r}")
    outputs = [[(o.get("name"), o.get("dtype")) for o in m.get("outputs", [])] for m in (old, new)]
    if outputs[0] != outputs[1]:
        out.append(f"outputs: {a} has {outputs[0]}, {b} has {outputs[1]}")
    names = [[f["name"] for f in m["features"]] for m in (old, new)]
    return out + _feature_differences(names[0], names[1], a, b)


def check_compatible(old: Mapping[str, Any], new: Mapping[str, Any], names: tuple[str, str] | None = None) -> None:
    """Raise ``IncompatibleModelsError`` naming every difference, or return."""
    found = differences(old, new, names)
    if found:
        a, b = names or (old.get("version", "OLD"), new.get("version", "NEW"))
        raise IncompatibleModelsError(f"{a} and {b} cannot be compared on the same rows: " + "; ".join(found))
