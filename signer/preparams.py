"""Keeps the enclave's Paillier pre-parameters (safe-prime pairs for GG20 key generation) at rest
in the host store, sealed, so a restarted enclave is refilled without a prime search.

Every `interval` seconds the keeper asks the enclave for the sets its pool produced since the
last ask (PreparamsExport) and stores them; it deletes the stored copies of exported sets the
enclave reports it has used. When the enclave it talks to is a new one (its identity key in
InfoResponse changed: a restart, or the first contact), it takes stored sets from the store
(deleting them: each is handed over once) and imports them, as many as the pool has room for.
Sets refused only for lack of room or an unavailable sealing service are stored again; sets
refused as invalid are dropped (logged). A transport failure during an import loses the sets
taken for it: that costs a prime search, never a reuse.

The host sees sealed bytes and ids only; what the sealing protects and the crash cases are
described in enclave.primes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from enclave.transport.client import EnclaveClient, EnclaveRequestError, TransportError
from mpc.v1 import enclave_pb2 as epb
from signer.storage import Store
from signer.storage.errors import StorageError

log = logging.getLogger(__name__)

_KEEP = frozenset({epb.ERROR_CODE_RESOURCE_EXHAUSTED, epb.ERROR_CODE_UNAVAILABLE})


class PreparamsKeeper:
    def __init__(self, enclave: EnclaveClient, store: Callable[[], Store | None], interval: float) -> None:
        self._enclave = enclave
        self._store = store
        self._interval = interval
        self._enclave_key: bytes | None = None  # identity of the enclave last refilled
        self._unsupported = False

    async def run(self) -> None:
        while True:
            try:
                await self.sync_once()
            except (TransportError, StorageError) as exc:
                log.info("pre-parameter sync skipped: %s", exc)
            except Exception:
                log.exception("pre-parameter sync failed")
            await asyncio.sleep(self._interval)

    async def sync_once(self) -> None:
        store = self._store()
        if store is None or self._unsupported:
            return
        info = await self._enclave.info(timeout=self._interval)
        if not info.HasField("preparams_ready"):
            return  # this enclave keeps no pool
        try:
            exported = await self._export(store)
        except EnclaveRequestError as exc:
            if exc.code == epb.ERROR_CODE_UNIMPLEMENTED:
                self._unsupported = True
                return
            raise
        if info.enclave_public_key != self._enclave_key:
            await self._import(store, exported.pool_size - exported.ready)
            self._enclave_key = info.enclave_public_key

    async def _export(self, store: Store) -> epb.PreparamsExported:
        response = await self._enclave.call(epb.Request(preparams_export=epb.PreparamsExport()))
        exported = response.preparams_exported
        for blob in exported.sealed:
            await store.put_preparams(blob.id, blob.data)
        if exported.consumed_ids:
            await store.delete_preparams(list(exported.consumed_ids))
        if exported.sealed or exported.consumed_ids:
            log.info(
                "pre-parameters: %d sealed set(s) stored, %d used set(s) deleted",
                len(exported.sealed), len(exported.consumed_ids),
            )
        return exported

    async def _import(self, store: Store, room: int) -> None:
        if room <= 0:
            return
        taken = await store.take_preparams(room)
        if not taken:
            return
        blobs = [epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_PREPARAMS, id=i, data=d) for i, d in taken]
        response = await self._enclave.call(epb.Request(preparams_import=epb.PreparamsImport(sealed=blobs)))
        imported = response.preparams_imported
        by_id = dict(taken)
        for refusal in imported.refused:
            if refusal.code in _KEEP and refusal.id in by_id:
                await store.put_preparams(refusal.id, by_id[refusal.id])
            else:
                log.warning("pre-parameter set %s refused by the enclave: %s", refusal.id, refusal.message)
        log.info(
            "pre-parameters: %d stored set(s) imported into the enclave (%d ready)",
            len(imported.imported_ids), imported.ready,
        )
