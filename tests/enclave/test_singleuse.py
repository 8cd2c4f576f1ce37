"""The per-boot sealer and the single-use ledger (enclave/engine/singleuse.py): a complete,
bounded record of what one boot used, and blobs of another boot told apart before decryption."""

from __future__ import annotations

import pytest

from enclave.engine.singleuse import SingleUseLedger, check_this_boot
from enclave.errors import RequestRejected
from enclave.sealing import Binding, LocalSealer, SealedBlobCorrupt, boot_sealer, is_boot_kind
from mpc.v1 import enclave_pb2 as pb
from tests.enclave.frost.common import FixedRng

BINDING = Binding(key_id="k", protocol="gg20-secp256k1", party_id=1, purpose="presignature", item_id="p")


def refusal(ledger: SingleUseLedger, seq: int) -> tuple[int, str]:
    with pytest.raises(RequestRejected) as err:
        ledger.consume(seq)
    return err.value.code, err.value.message


def test_each_number_is_used_once() -> None:
    ledger = SingleUseLedger("presignature", window=8)
    a, b = ledger.issue(), ledger.issue()
    assert (a, b) == (1, 2)
    ledger.check(a)
    ledger.consume(a)
    assert refusal(ledger, a) == (pb.ERROR_CODE_FAILED_PRECONDITION, "presignature already used")
    with pytest.raises(RequestRejected, match="already used"):
        ledger.check(a)
    ledger.consume(b)  # the other one is unaffected
    assert ledger.is_used(a) and ledger.is_used(b)
    # A number this boot never assigned (only a forgery could carry one).
    assert refusal(ledger, 3)[0] == pb.ERROR_CODE_SEALED_BLOB_INVALID
    assert refusal(ledger, 0)[0] == pb.ERROR_CODE_SEALED_BLOB_INVALID


def test_the_window_bounds_the_record_and_refuses_older_items() -> None:
    ledger = SingleUseLedger("presignature", window=4)
    seqs = [ledger.issue() for _ in range(4)]  # 1..4 fill the window
    ledger.consume(seqs[1])
    for _ in range(3):  # 5, 6, 7 push 1, 2, 3 out
        ledger.issue()
    issued, low, used = ledger.stats()
    assert (issued, low, used) == (7, 4, 0)  # the record spans `window` numbers, no more
    assert ledger.expired == 2  # 1 and 3 were never used; 2 was
    for old in (1, 2, 3):  # used or not: refused, never usable again
        code, message = refusal(ledger, old)
        assert code == pb.ERROR_CODE_FAILED_PRECONDITION and "older than the enclave's single-use window" in message
    ledger.consume(4)  # the oldest still in the window
    assert refusal(ledger, 4)[1] == "presignature already used"
    for _ in range(100_000):
        ledger.issue()
    assert ledger.stats()[0] - ledger.stats()[1] < ledger.window
    assert ledger._used.bit_length() <= ledger.window


def test_boot_sealers_are_distinct_and_told_apart() -> None:
    first, second = boot_sealer(FixedRng(b"boot-1")), boot_sealer(FixedRng(b"boot-2"))
    assert is_boot_kind(first.kind) and is_boot_kind(second.kind) and first.kind != second.kind
    blob = first.seal(b"a presignature record", BINDING)
    assert first.unseal(blob, BINDING) == b"a presignature record"
    check_this_boot(first, blob, "presignature p")  # this boot's: passes
    with pytest.raises(RequestRejected) as err:
        check_this_boot(second, blob, "presignature p")  # the next boot's enclave
    assert err.value.code == pb.ERROR_CODE_SEALED_IN_EARLIER_BOOT
    assert "sealed in an earlier enclave boot" in err.value.message
    with pytest.raises(SealedBlobCorrupt):
        second.unseal(blob, BINDING)
    # A blob of a durable sealer (an older version's presignature) is refused the same way.
    durable = LocalSealer(bytes(32)).seal(b"old", BINDING)
    with pytest.raises(RequestRejected) as err:
        check_this_boot(first, durable, "presignature p")
    assert err.value.code == pb.ERROR_CODE_SEALED_IN_EARLIER_BOOT
    # Even with the same fixed randomness, the key is the Rng's, never anything durable.
    assert boot_sealer(FixedRng(b"boot-1")).kind == first.kind
