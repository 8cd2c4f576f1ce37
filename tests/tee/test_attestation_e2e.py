"""Attestation through the API: a real signer and enclave process, verified with the SDK verifier.

Mode "none" says so and hands out no document. With a test attestor in the enclave process
(documents signed by the test CA chain, as the NSM would sign them with AWS's), `Ping` with a
nonce returns a document that `verify_attestation` accepts against the test root, and whose
`public_key` is the enclave identity key `Ping` reports: a caller can pin it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from enclave.service import IDENTITY_USER_DATA
from enclave.tee.attestation import NO_ATTESTATION_STATEMENT
from mpc.v1 import signer_pb2 as pb
from signer.client.attestation import AttestationError, Reason, attest_node, verify_attestation
from tests.tee.fixture_enclave import write_chain
from tests.tee.nitro_docs import PCR0, PCR1, PCR2, CaChain, make_chain

EXPECTED = {0: PCR0, 1: PCR1, 2: PCR2}


@pytest.fixture(scope="module")
def chain() -> CaChain:
    now = datetime.now(UTC)
    return make_chain(leaf_not_before=now - timedelta(hours=1), leaf_not_after=now + timedelta(hours=3))


@pytest.fixture(scope="module")
def plain(start_tee_node):  # type: ignore[no-untyped-def]
    return start_tee_node("plain")


@pytest.fixture(scope="module")
def attested(start_tee_node, chain, tmp_path_factory):  # type: ignore[no-untyped-def]
    directory = write_chain(chain, tmp_path_factory.mktemp("chain"))
    return start_tee_node("attested", ["--attestation", "nitro"], {"MPC_TEST_ATTESTATION_DIR": str(directory)})


def p256_point(data: bytes) -> ec.EllipticCurvePublicKey:
    assert len(data) == 65 and data[0] == 4
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)


async def test_mode_none_says_so_and_hands_out_no_document(plain, connect) -> None:  # type: ignore[no-untyped-def]
    reply = await connect(plain).ping(secrets.token_bytes(32))
    assert reply.enclave_state == pb.ENCLAVE_STATE_READY
    assert reply.attestation_mode == "none"
    assert reply.attestation_document == b""
    p256_point(reply.enclave_public_key)  # reported, but nothing vouches for it in this mode
    assert NO_ATTESTATION_STATEMENT in plain.enclave.log()  # the enclave states it at start


async def test_document_binds_the_nonce_and_the_enclave_key(attested, chain, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(attested)
    nonce = secrets.token_bytes(32)
    reply = await client.ping(nonce)
    assert reply.attestation_mode == "nitro" and reply.attestation_document
    doc = verify_attestation(reply.attestation_document, expected_pcrs=EXPECTED, nonce=nonce, root=chain.root)
    assert doc.nonce == nonce
    assert doc.public_key == reply.enclave_public_key
    assert doc.user_data == IDENTITY_USER_DATA
    p256_point(doc.public_key or b"")
    # The same key on every document of this enclave process; a fresh nonce each time.
    again = await client.ping(secrets.token_bytes(32))
    assert again.enclave_public_key == reply.enclave_public_key
    assert again.attestation_document != reply.attestation_document


async def test_a_document_for_another_nonce_or_root_is_refused(attested, chain, connect) -> None:  # type: ignore[no-untyped-def]
    reply = await connect(attested).ping(secrets.token_bytes(32))
    with pytest.raises(AttestationError) as err:
        verify_attestation(reply.attestation_document, expected_pcrs=EXPECTED, nonce=b"another", root=chain.root)
    assert err.value.reason == Reason.NONCE_MISMATCH
    nonce = secrets.token_bytes(32)
    reply = await connect(attested).ping(nonce)
    with pytest.raises(AttestationError) as err:
        # The production root (AWS Nitro) did not sign the test chain.
        verify_attestation(reply.attestation_document, expected_pcrs=EXPECTED, nonce=nonce)
    assert err.value.reason == Reason.WRONG_ROOT
    with pytest.raises(AttestationError) as err:
        verify_attestation(reply.attestation_document, expected_pcrs={0: PCR1}, nonce=nonce, root=chain.root)
    assert err.value.reason == Reason.PCR_MISMATCH


async def test_a_restarted_enclave_has_a_new_identity(attested, chain, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(attested)
    before = (await client.ping(secrets.token_bytes(16))).enclave_public_key
    attested.enclave.stop()
    attested.enclave.start()
    attested.signer.wait_health(1, timeout=20)  # SERVING
    nonce = secrets.token_bytes(16)
    reply = await client.ping(nonce)
    doc = verify_attestation(reply.attestation_document, expected_pcrs=EXPECTED, nonce=nonce, root=chain.root)
    assert doc.public_key == reply.enclave_public_key != before


async def test_sdk_attest_node(attested, plain, chain, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(attested)
    doc = await attest_node(client, expected_pcrs=EXPECTED, root=chain.root)
    assert doc.public_key == (await client.ping()).enclave_public_key
    with pytest.raises(AttestationError) as err:
        await attest_node(connect(plain), expected_pcrs=EXPECTED, root=chain.root)
    assert err.value.reason == Reason.NOT_ATTESTED

    class SwappedKey:
        """A host answering with a genuine document but claiming another enclave key."""

        async def ping(self, attestation_nonce: bytes = b"") -> pb.PingResponse:
            reply = await client.ping(attestation_nonce)
            reply.enclave_public_key = (
                ec.generate_private_key(ec.SECP256R1())
                .public_key()
                .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
            )
            return reply

    with pytest.raises(AttestationError) as err:
        await attest_node(SwappedKey(), expected_pcrs=EXPECTED, root=chain.root)
    assert err.value.reason == Reason.KEY_MISMATCH
