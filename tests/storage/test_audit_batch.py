"""append_audits: several records in one transaction, on both backends."""

from __future__ import annotations

from signer.storage import AuditQuery, AuditRecord, Store


async def test_batch_appends_in_order_and_empty_is_a_no_op(store: Store) -> None:
    await store.append_audits([])
    records = [
        AuditRecord(
            operation="sign",
            caller="svc",
            session_id=f"s{i}",
            result="ok",
            key_id=f"{i:064x}",
            digest="ab" * 32,
            culprits=(i,),
            reason=f"r{i}",
        )
        for i in range(1, 4)
    ]
    await store.append_audits(records)
    stored = await store.query_audit(AuditQuery(operation="sign"))
    assert [(r.session_id, r.key_id, r.digest, r.culprits, r.reason) for r in reversed(stored)] == [
        (r.session_id, r.key_id, r.digest, r.culprits, r.reason) for r in records
    ]
    assert all(r.id is not None and r.time is not None for r in stored)
