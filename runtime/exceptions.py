"""Errors raised by the serving path. The Lambda layer maps them to HTTP status codes."""

from __future__ import annotations


class ModelArtifactError(RuntimeError):
    """The model folder is missing, incomplete, corrupt, or does not match its manifest."""


class InputValidationError(ValueError):
    """A request cannot be predicted on; ``details`` lists what is wrong (field, row, reason)."""

    status_code = 400
    error_type = "InvalidInput"

    def __init__(self, message: str, details: list[dict] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class PayloadTooLargeError(InputValidationError):
    """The request body or the batch is larger than the configured limit."""

    status_code = 413
    error_type = "PayloadTooLarge"


class BatchInputError(ValueError):
    """A batch-scoring input or output cannot be used as given (format, columns, types); nothing was written."""
