"""Can two certified models be compared on the same rows? Only if they answer the same request.

The rule is the manifest's one compatibility rule, ``Manifest.differences``: the same manifest format, input, outputs
(names, dtypes and shapes) and features in the same order. Training ranges, thresholds and metrics may differ: that
is what a new model is. A pair that passes here can also stand beside each other as A/B or shadow models.
"""

from __future__ import annotations

from runtime.manifest import Manifest


class IncompatibleModelsError(ValueError):
    """The two manifests disagree on features or input contract; the message names each difference."""


def check_compatible(old: Manifest, new: Manifest, names: tuple[str, str] | None = None) -> None:
    """Raise ``IncompatibleModelsError`` naming every difference, or return. ``names`` label the two models in the
    message (default: their versions)."""
    found = old.differences(new, names)
    if found:
        a, b = names or (old.version, new.version)
        raise IncompatibleModelsError(f"{a} and {b} cannot be compared on the same rows: " + "; ".join(found))
