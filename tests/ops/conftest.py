"""The service tests' SDK fixtures (`ring`, `local`, `connect`), shared with the operations tests."""

from tests.service.conftest import connect, local, ring  # noqa: F401 (re-exported fixtures)
