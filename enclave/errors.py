"""Error types of the enclave. Messages never carry secret values."""

from __future__ import annotations


class EnclaveError(Exception):
    """Base class for every error raised by enclave code."""


class InvalidEncoding(EnclaveError, ValueError):
    """Bytes from a peer that do not decode to a valid group element, scalar or structure."""


class InvalidParameters(EnclaveError, ValueError):
    """Locally supplied parameters that make no sense (threshold, party set, sizes)."""
