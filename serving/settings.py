"""The serving settings: every environment variable the Lambda application reads, read and checked in one place.

``Settings.from_env(os.environ)`` runs at INIT; a bad value raises ``ConfigurationError`` naming the variable and
the fix, so a misconfigured function fails to start instead of failing requests. Tests and ``diecast invoke`` build
``Settings(...)`` directly with the values they need.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runtime import artifacts, routing
from runtime.contracts import DEFAULT_VERSION, METRIC_NAMESPACE, is_version, version_problem
from runtime.exceptions import ConfigurationError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
CAPTURE_VAR = "CAPTURE_PREDICTIONS"


def default_model_path(version: str) -> str:
    """``models_onnx/<version>`` beside the ``serving`` package: the image's layout and the repository's."""
    return os.path.join(artifacts.MODELS_DIR, version)


@dataclass(frozen=True)
class Settings:
    """How one serving process is configured. Each field names the environment variable it comes from."""

    model_version: str = DEFAULT_VERSION
    """``MODEL_VERSION``: the folder under ``models_onnx/`` to serve, ``v<major>[.<minor>...]``."""
    model_path: str = ""
    """``MODEL_PATH``: the model folder itself; empty means ``models_onnx/<model_version>`` (``model_dir``)."""
    log_level: str = "INFO"
    """``LOG_LEVEL``: one of DEBUG, INFO, WARNING, ERROR; at DEBUG a rejected payload is logged (4 KiB at most)."""
    max_batch_size: int = 1000
    """``MAX_BATCH_SIZE``: the most rows one request may hold (more is a 413)."""
    max_body_bytes: int = 1 << 20
    """``MAX_BODY_BYTES``: the largest proxy body in UTF-8 bytes, after base64 decoding (more is a 413)."""
    metric_namespace: str = METRIC_NAMESPACE
    """``METRIC_NAMESPACE``: the CloudWatch namespace of the per-request EMF metrics."""
    capture: bool = False
    """``CAPTURE_PREDICTIONS``: ``true`` writes one capture line per predicted row after the request's line."""
    ab_version: str = ""
    """``AB_SPLIT``'s version (``v1.1`` of ``v1.1:0.10``): B, beside the primary; empty means no split."""
    ab_share: float = 0.0
    """``AB_SPLIT``'s share (``0.10`` of ``v1.1:0.10``): the part of inference ids B answers, 0 < share < 1."""
    shadow_version: str = ""
    """``SHADOW_MODEL_VERSION``: a model run on every row after the primary answered, for capture only; empty: none."""

    @property
    def model_dir(self) -> str:
        """The primary's model folder."""
        return self.model_path or default_model_path(self.model_version)

    def second_model_dir(self, version: str) -> str:
        """Another version's folder: beside the primary's, as ``models_onnx/`` holds them."""
        return str(Path(self.model_dir).resolve().parent / version)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """The settings an environment asks for; ``ConfigurationError`` naming the first bad variable (checked in
        field order)."""
        # The field defaults above are the one place each default is written (a dataclass keeps them on the class).
        model_version = _model_version(environ.get("MODEL_VERSION", cls.model_version))
        log_level = _log_level(environ.get("LOG_LEVEL", cls.log_level))
        max_batch_size = _positive_int(environ, "MAX_BATCH_SIZE", cls.max_batch_size)
        max_body_bytes = _positive_int(environ, "MAX_BODY_BYTES", cls.max_body_bytes)
        capture = capture_enabled(environ.get(CAPTURE_VAR))
        split = environ.get("AB_SPLIT")
        ab_version, ab_share = routing.parse_split(split) if split else ("", 0.0)
        shadow = environ.get("SHADOW_MODEL_VERSION")
        return cls(
            model_version=model_version,
            model_path=environ.get("MODEL_PATH") or "",
            log_level=log_level,
            max_batch_size=max_batch_size,
            max_body_bytes=max_body_bytes,
            metric_namespace=environ.get("METRIC_NAMESPACE", cls.metric_namespace),
            capture=capture,
            ab_version=ab_version,
            ab_share=ab_share,
            shadow_version=_shadow_version(shadow) if shadow else "",
        )


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, str(default))
    if not value.isdigit() or int(value) < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _model_version(value: str) -> str:
    if not is_version(value):
        raise ConfigurationError(version_problem("MODEL_VERSION", value) or "")
    return value


def _shadow_version(value: str) -> str:
    if not is_version(value):
        raise ConfigurationError(f"SHADOW_MODEL_VERSION must name a model version like v1.1, got {value!r}")
    return value


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise ConfigurationError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level


def capture_enabled(value: str | None) -> bool:
    """``CAPTURE_PREDICTIONS`` -> bool: unset means off; ``true``/``false`` in any case; anything else is an error."""
    if value is None:
        return False
    flag = value.lower()
    if flag not in ("true", "false"):
        raise ConfigurationError(
            f"{CAPTURE_VAR} must be 'true' or 'false' (any case), got {value!r}; fix the environment"
        )
    return flag == "true"
