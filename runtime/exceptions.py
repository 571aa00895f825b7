"""Errors raised by the serving path. They say what is wrong; serving/http.py alone decides HTTP status codes."""

from __future__ import annotations


class ModelArtifactError(RuntimeError):
    """The model folder is missing, incomplete, corrupt, or does not match its manifest."""


class ConfigurationError(ValueError):
    """An environment setting has a value the serving path cannot use; raised at INIT, never on a request."""


class InputValidationError(ValueError):
    """A request cannot be predicted on; ``details`` lists what is wrong (field, row, reason)."""

    def __init__(self, message: str, details: list[dict] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class PayloadTooLargeError(InputValidationError):
    """The request body or the batch is larger than the configured limit."""


class OutOfEnvelopeError(InputValidationError):
    """A reading lies beyond the envelope the model answers (the manifest's ``envelope_widths``)."""


class NonFiniteOutputError(InputValidationError):
    """The model produced a non-finite number for these readings; never served as a prediction."""
