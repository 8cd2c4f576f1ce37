"""Signing reads a key record from the store once, then from the host's cache of (write-once,
public + sealed) key records; the per-request checks still run on every start."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from mpc.v1 import enclave_pb2 as epb
from signer.api.operations import Operations, party_numbers
from signer.errors import InvalidArgument, NotFound
from signer.storage import KeyRecord, open_store

PARTIES = ["client", "signer"]


class CountingStore:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gets = 0

    async def get_key(self, key_id: str) -> KeyRecord:
        self.gets += 1
        return await self.inner.get_key(key_id)


def _start(key_id: str, **kw: Any) -> epb.SessionStart:
    fields: dict[str, Any] = dict(
        session_id="s-1",
        kind=epb.SESSION_KIND_SIGN,
        protocol=epb.PROTOCOL_FROST_ED25519,
        key_id=key_id,
        party_ids=PARTIES,
        self_party_id="signer",
    )
    fields.update(kw)
    return epb.SessionStart(**fields)


async def test_key_records_are_read_once_and_still_checked(tmp_path: Path) -> None:
    inner = await open_store(f"sqlite:{tmp_path}/keys.db")
    try:
        numbers = party_numbers(PARTIES)
        key = await inner.put_key(
            KeyRecord(
                key_id=secrets.token_hex(32),
                protocol="frost-ed25519",
                party_id=numbers[1],
                threshold=2,
                party_ids=numbers,
                public_key=secrets.token_bytes(32),
                chain_code=b"",
                sealer_kind="local",
                sealed_share=b"MPCS" + secrets.token_bytes(60),
            )
        )
        store = CountingStore(inner)
        ops = Operations(store)  # type: ignore[arg-type]
        assert (await ops._key(_start(key.key_id))).sealed_share == key.sealed_share
        assert (await ops._key(_start(key.key_id))).key_id == key.key_id
        assert store.gets == 1
        with pytest.raises(InvalidArgument):  # a cached key is still checked against the request
            await ops._key(_start(key.key_id, protocol=epb.PROTOCOL_GG20_SECP256K1))
        with pytest.raises(InvalidArgument):
            await ops._key(_start(key.key_id, self_party_id="client"))
        missing = secrets.token_hex(32)
        for _ in range(2):  # unknown keys are not cached: each start asks the store
            with pytest.raises(NotFound):
                await ops._key(_start(missing))
        assert store.gets == 3
    finally:
        await inner.close()
