"""The host's checks of a StartRefresh against its key record (signer.api.operations), before the
enclave sees anything: the protocol, the key's full ordered party set, this node's party and the
threshold must be the key's; a request that passes gets the key's threshold and sealed share."""

from __future__ import annotations

import secrets

import pytest

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.api.operations import check_refresh_matches, party_numbers
from signer.errors import InvalidArgument
from signer.sessions import convert
from signer.storage import KeyRecord

PARTIES = ("client", "signer", "backup")


def record(names: bool = True) -> KeyRecord:
    numbers = party_numbers(PARTIES)
    return KeyRecord(
        key_id=secrets.token_hex(32),
        protocol="frost-ed25519",
        party_id=numbers[1],
        threshold=2,
        party_ids=numbers,
        public_key=b"\x07" * 32,
        chain_code=b"",
        sealer_kind="local",
        sealed_share=b"MPCS" + secrets.token_bytes(60),
        party_names=PARTIES if names else (),
        self_name="signer" if names else "",
    )


def start(key: KeyRecord, **changes: object) -> epb.SessionStart:
    fields: dict[str, object] = dict(
        session_id="refresh-1",
        protocol=pb.PROTOCOL_FROST_ED25519,
        key_id=key.key_id,
        party_ids=PARTIES,
        self_party_id="signer",
    )
    fields.update(changes)
    return convert.refresh_start(pb.StartRefreshRequest(**fields))  # type: ignore[arg-type]


def test_a_request_stating_the_key_as_it_is_passes() -> None:
    key = record()
    for threshold in (0, 2):
        s = start(key, threshold=threshold)
        assert s.kind == epb.SESSION_KIND_REFRESH and s.key_id == key.key_id and s.threshold == threshold
        check_refresh_matches(s, key)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"protocol": pb.PROTOCOL_GG20_SECP256K1}, "protocol does not match key"),
        ({"party_ids": ("signer", "client", "backup")}, "in its order (client, signer, backup)"),
        ({"party_ids": ("client", "signer")}, "party_ids must be the full party set"),
        ({"party_ids": (*PARTIES, "extra")}, "party_ids must be the full party set"),
        ({"self_party_id": "client"}, "self_party_id is not this node's party in the key"),
        ({"threshold": 3}, "threshold must be the key's (2) or 0"),
    ],
)
def test_a_request_that_changes_the_key_is_refused(changes: dict[str, object], message: str) -> None:
    key = record()
    with pytest.raises(InvalidArgument) as refused:
        check_refresh_matches(start(key, **changes), key)
    assert message in str(refused.value)


def test_a_key_stored_without_names_is_checked_on_its_party_set() -> None:
    """Records from before schema 5 keep the party set as numbers only: the host refuses another
    set; the order is the enclave's to check (the sealed share binds it)."""
    key = record(names=False)
    check_refresh_matches(start(key, party_ids=("backup", "signer", "client")), key)
    with pytest.raises(InvalidArgument, match="party_ids must be the full party set"):
        check_refresh_matches(start(key, party_ids=("client", "signer", "other")), key)


def test_malformed_requests_are_refused_before_any_lookup() -> None:
    key = record()
    for changes, message in (
        ({"threshold": 1}, "threshold must be 0 (the key's)"),
        ({"threshold": 4}, "threshold must be 0 (the key's)"),
        ({"key_id": "AB" * 32}, "key_id must be 64 lowercase hex"),
        ({"self_party_id": "nobody"}, "self_party_id must be one of party_ids"),
        ({"party_ids": ("client", "client", "signer")}, "party_ids must be distinct"),
    ):
        with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
            start(key, **changes)
