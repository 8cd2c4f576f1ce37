"""Keeps the host store in step with the enclave's boot: single-use items sealed in an earlier
boot are dropped (and counted), the enclave's newly sealed Paillier pre-parameters are stored.

Presignatures and pre-parameter sets are sealed under a key that lives in enclave memory for one
boot (enclave/engine/singleuse.py): after an enclave restart none of the stored ones can ever be
used. When the enclave the keeper talks to is a new one (its identity key in InfoResponse
changed: a restart, or the first contact), the keeper
- marks consumed ("burned") every available presignature sealed by a sealer known dead: the
  boot this keeper saw before the restart (`InfoResponse.boot_sealer_kind` names each boot's
  sealer, and every blob's header names the sealer that made it), and durable sealers (blobs of
  an older version). Other boots' presignatures are left alone: they may belong to a replica's
  enclave sharing the store (README, Scaling out). Signing without a named presignature only
  takes this boot's (`boot_sealer_kind`); the caller refills the pool with StartPresign;
- hands every stored pre-parameter set to the enclave once (deleting it from the store); the
  enclave refuses those of an earlier boot (ERROR_CODE_SEALED_IN_EARLIER_BOOT), which are dropped.
Both are counted in `mpc_signer_single_use_burned_total{item}`. A host restart alone burns nothing.

Every `interval` seconds the keeper also asks the enclave for the sets its pool produced since
the last ask (PreparamsExport) and stores them; it deletes the stored copies of exported sets the
enclave reports it has used. Sets refused only for lack of room or an unavailable sealing service
are stored again; any other refusal drops the set (logged). A transport failure during an import
loses the sets taken for it: that costs a prime search, never a reuse.

The host sees sealed bytes and ids only; single use does not depend on anything done here (the
enclave refuses a second use whatever the store holds): this keeps the pools honest and the
metrics telling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mpc.v1 import enclave_pb2 as epb
from signer.link.client import EnclaveClient, EnclaveRequestError, TransportError
from signer.storage import Store
from signer.storage.errors import PresignatureUnavailable, StorageError

log = logging.getLogger(__name__)

_KEEP = frozenset({epb.ERROR_CODE_RESOURCE_EXHAUSTED, epb.ERROR_CODE_UNAVAILABLE})
_IMPORT_BATCH = 64  # the enclave's limit per PreparamsImport
BOOT_KIND_PREFIX = "boot-"  # enclave.sealing.BOOT_KIND_PREFIX: per-boot sealers' kinds
BURNED_BY: str = "enclave-restart"  # consumed_by of a presignature burned by a restart


async def burn_stale_presignatures(store: Store, dead: Callable[[str], bool]) -> int:
    """Mark consumed every available presignature whose sealer kind is `dead`; returns how many.
    Idempotent; a concurrent signing request may win one (it then fails in the enclave with the
    same reason)."""
    snapshot = await store.export_snapshot()
    burned = 0
    for p in snapshot.presignatures:
        if not dead(p.sealer_kind):
            continue
        try:
            await store.consume_presignature(p.key_id, p.signer_set, BURNED_BY, p.presig_id)
        except PresignatureUnavailable:
            continue
        burned += 1
    return burned


class PreparamsKeeper:
    def __init__(
        self,
        enclave: EnclaveClient,
        store: Store,
        interval: float,
        burned: Callable[[str, int], None] | None = None,
    ) -> None:
        self._enclave = enclave
        self._store = store
        self._interval = interval
        self._burned = burned or (lambda _kind, _count: None)
        self._enclave_key: bytes | None = None  # identity of the enclave last brought in step
        self.boot_kind: str | None = None  # its single-use sealer kind (None: not known yet)
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
        store = self._store
        info = await self._enclave.info(timeout=self._interval)
        new_enclave = info.enclave_public_key != self._enclave_key
        if new_enclave and info.boot_sealer_kind:
            current, before = info.boot_sealer_kind, self.boot_kind

            def dead(kind: str) -> bool:
                return kind != current and (kind == before or not kind.startswith(BOOT_KIND_PREFIX))

            burned = await burn_stale_presignatures(store, dead)
            self.boot_kind = current
            if burned:
                log.warning("%d presignature(s) sealed in an earlier enclave boot dropped; the pool refills", burned)
                self._burned("presignature", burned)
        if self._unsupported or not info.HasField("preparams_ready"):
            self._enclave_key = info.enclave_public_key
            return  # this enclave keeps no pool
        try:
            if new_enclave:
                await self._import_all(store)
            await self._export(store)
        except EnclaveRequestError as exc:
            if exc.code == epb.ERROR_CODE_UNIMPLEMENTED:
                self._unsupported = True
                return
            raise
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
                len(exported.sealed),
                len(exported.consumed_ids),
            )
        return exported

    async def _import_all(self, store: Store) -> None:
        """Hand every stored set to the enclave once; each is deleted as it is taken."""
        remaining = await store.count_preparams()
        imported = burned = 0
        while remaining > 0:
            taken = await store.take_preparams(min(_IMPORT_BATCH, remaining))
            if not taken:
                break
            remaining -= len(taken)
            blobs = [epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_PREPARAMS, id=i, data=d) for i, d in taken]
            response = await self._enclave.call(epb.Request(preparams_import=epb.PreparamsImport(sealed=blobs)))
            answer = response.preparams_imported
            imported += len(answer.imported_ids)
            by_id = dict(taken)
            for refusal in answer.refused:
                if refusal.code in _KEEP and refusal.id in by_id:
                    await store.put_preparams(refusal.id, by_id[refusal.id])
                elif refusal.code == epb.ERROR_CODE_SEALED_IN_EARLIER_BOOT:
                    burned += 1
                else:
                    log.warning("pre-parameter set %s refused by the enclave: %s", refusal.id, refusal.message)
        if burned:
            log.warning("%d pre-parameter set(s) sealed in an earlier enclave boot dropped; the pool refills", burned)
            self._burned("preparams", burned)
        if imported:
            log.info("pre-parameters: %d stored set(s) imported into the enclave", imported)
