"""A second model beside the primary: an A/B split by inference id, or a shadow that never answers. Pure rules: no
I/O, no environment, no HTTP (``serving/settings.py`` reads the variables, ``serving/app.py`` wires the models).

``AB_SPLIT=v1.1:0.10`` sends a deterministic 10 % of rows to v1.1: a row goes to B when the CRC-32 of its inference id
(the part's serial number when the client sends one) falls in the lowest ``share`` of the 32-bit range, so a part is
always scored by the same model, in any process, on any day. ``SHADOW_MODEL_VERSION=v1.1`` runs v1.1 on every row
after the primary has answered, for the capture records only.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from runtime.contracts import is_version
from runtime.exceptions import ConfigurationError

_SCALE = float(1 << 32)


def parse_split(value: str) -> tuple[str, float]:
    """``"v1.1:0.10"`` -> ("v1.1", 0.1); ``ConfigurationError`` naming ``AB_SPLIT`` for anything else."""
    version, sep, share = value.partition(":")
    try:
        fraction = float(share)
    except ValueError:
        fraction = -1.0
    if not sep or not 0.0 < fraction < 1.0:
        raise ConfigurationError(f"AB_SPLIT must look like v1.1:0.10 (version:share, 0 < share < 1), got {value!r}")
    if not is_version(version):
        raise ConfigurationError(f"AB_SPLIT must name a model version like v1.1, got {version!r}")
    return version, fraction


def goes_to_b(inference_id: str, share: float) -> bool:
    """Whether this id belongs to B's share: stable across processes (CRC-32, not Python's salted hash)."""
    return zlib.crc32(inference_id.encode("utf-8", "surrogatepass")) < share * _SCALE


def row_ids(ids: Sequence[str | None], request_id: str, batch: bool) -> list[str]:
    """Each row's inference id, as the capture names it: the client's, else the request id (and the row)."""
    if not batch:
        return [ids[0] or request_id]
    return [given or f"{request_id}:{row}" for row, given in enumerate(ids)]
