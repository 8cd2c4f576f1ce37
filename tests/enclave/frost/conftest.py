"""`suite`: each FROST ciphersuite in turn (Ed25519, secp256k1, secp256k1 Taproot)."""

from __future__ import annotations

import pytest

from enclave.protocols.frost.ciphersuite import Ciphersuite
from tests.enclave.frost.common import SUITES


@pytest.fixture(params=SUITES, ids=[cs.short_name for cs in SUITES])
def suite(request: pytest.FixtureRequest) -> Ciphersuite:
    cs: Ciphersuite = request.param
    return cs
