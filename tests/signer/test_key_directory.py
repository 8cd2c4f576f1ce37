"""The API half of GetKey, ListKeys and RetireKey over a real SQLite store: page tokens, the
successor rule and the running-session rule with their messages and audit records, and the key
cache never letting a retired key sign."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.api.keys import KeyDirectory, decode_page_token, encode_page_token, key_info, key_query
from signer.api.operations import KEY_CACHE_SECONDS, Operations, party_numbers
from signer.errors import FailedPrecondition, InvalidArgument, NotFound
from signer.storage import AuditQuery, KeyRecord, Store, open_store

PARTIES = ("client", "signer")


def record(predecessor: str = "", names: bool = True) -> KeyRecord:
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
        predecessor_key_id=predecessor,
    )


def sign_start(key_id: str) -> epb.SessionStart:
    return epb.SessionStart(
        session_id="s-1",
        kind=epb.SESSION_KIND_SIGN,
        protocol=epb.PROTOCOL_FROST_ED25519,
        key_id=key_id,
        party_ids=PARTIES,
        self_party_id="signer",
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(f"sqlite:{tmp_path}/keys.db")
    yield s
    await s.close()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_page_tokens_round_trip_and_refuse_anything_else() -> None:
    key_id = secrets.token_hex(32)
    token = encode_page_token(key_id)
    assert decode_page_token(token) == key_id and decode_page_token("") == "" and encode_page_token("") == ""
    assert key_id not in token  # opaque: not the id in the clear
    for bad in ("x", token[:-1], token + "A", "AA" + token[2:], token.replace(token[0], "!"), "A" * 65):
        with pytest.raises(InvalidArgument, match="page_token"):
            decode_page_token(bad)
    query = key_query(
        pb.ListKeysRequest(page_token=token, state=pb.KEY_STATE_RETIRED, protocol=pb.PROTOCOL_GG20_SECP256K1)
    )
    assert (query.after, query.state, query.protocol, query.page_size) == (key_id, "retired", "gg20-secp256k1", 100)
    with pytest.raises(InvalidArgument, match="page_size"):
        key_query(pb.ListKeysRequest(page_size=1001))


def test_a_record_without_names_has_no_party_ids() -> None:
    info = key_info(record(names=False))
    assert list(info.party_ids) == [] and info.self_party_id == "" and info.state == pb.KEY_STATE_ACTIVE


async def test_successor_rule_names_the_successor(store: Store) -> None:
    old = await store.put_key(record())
    successor = await store.put_key(record(predecessor=old.key_id))
    await store.retire_key(successor.key_id)  # the successor is recorded here without a share
    directory = KeyDirectory(Operations(store), lambda _key: [])
    with pytest.raises(FailedPrecondition, match=successor.key_id):
        await directory.retire_key(pb.RetireKeyRequest(key_id=old.key_id))
    assert (await store.get_key(old.key_id)).state == "active"
    [audit] = await store.query_audit(AuditQuery(key_id=old.key_id))
    assert (audit.operation, audit.result) == ("retire", "failed") and successor.key_id in audit.reason


async def test_running_sessions_block_retirement(store: Store) -> None:
    key = await store.put_key(record())
    running: dict[str, list[str]] = {key.key_id: ["sess-9"]}
    retired: list[int] = []
    directory = KeyDirectory(Operations(store), lambda k: running.get(k, []), lambda: retired.append(1))
    with pytest.raises(FailedPrecondition, match="sess-9"):
        await directory.retire_key(pb.RetireKeyRequest(key_id=key.key_id))
    running.clear()
    answer = await directory.retire_key(pb.RetireKeyRequest(key_id=key.key_id))
    assert answer.key.state == pb.KEY_STATE_RETIRED and retired == [1]
    assert await directory.retire_key(pb.RetireKeyRequest(key_id=key.key_id)) == answer and retired == [1]
    with pytest.raises(NotFound):
        await directory.retire_key(pb.RetireKeyRequest(key_id=secrets.token_hex(32)))
    with pytest.raises(InvalidArgument):
        await directory.get_key(pb.GetKeyRequest(key_id="zz"))


async def test_a_cached_key_never_signs_after_retirement(store: Store) -> None:
    key = await store.put_key(record())
    clock = Clock()
    here, elsewhere = Operations(store, clock=clock), Operations(store, clock=clock)
    for ops in (here, elsewhere):
        assert (await ops._key(sign_start(key.key_id))).sealed_share == key.sealed_share  # cached now
    seen: list[Any] = []

    def running(key_id: str) -> list[str]:
        # while the retirement runs, no session may start with the key on this process
        seen.append(key_id in here.retiring)
        return []

    await KeyDirectory(here, running).retire_key(pb.RetireKeyRequest(key_id=key.key_id))
    assert seen == [True] and not here.retiring
    with pytest.raises(FailedPrecondition, match=rf"key {key.key_id} is retired \(at "):
        await here._key(sign_start(key.key_id))  # this process evicted its entry
    # another instance on the same database sees it once its entry is older than the bound
    clock.t += KEY_CACHE_SECONDS + 0.1
    with pytest.raises(FailedPrecondition, match="is retired"):
        await elsewhere._key(sign_start(key.key_id))
