"""Errors the monitor raises; the CLI turns each into a message on stderr and exit code 2."""

from __future__ import annotations


class MonitorInputError(ValueError):
    """An input (captures, labels, arguments) cannot be used; the message names the file, line or field and the fix."""


class ManifestError(ValueError):
    """The model folder's manifest lacks a field the monitor needs (re-run `make convert`)."""
