"""The service tests' fixtures (`start_node`, `ring`, `local`, `clients`), shared with the chaos tests."""

from tests.service.conftest import clients, local, ring, start_node  # noqa: F401 (re-exported fixtures)
