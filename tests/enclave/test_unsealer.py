"""Operator shares in process: the share codec, the share file and the unsealer's state machine.

The same behaviour through real enclave processes and the CLI is in tests/tee/test_unseal.py;
these cover the cases that need a hand on the file or the bytes (a share with a good checksum but
a wrong value, an altered share file, a failed write).
"""

from __future__ import annotations

import itertools
import json
import string
from pathlib import Path

import pytest

from enclave.crypto import shamir
from enclave.errors import BadInput, RequestRejected
from enclave.sealing import Binding, SealerConfigError
from enclave.unseal import keyfile
from enclave.unseal import shares as codec
from enclave.unseal.shares import OperatorShare, ShareRefused
from enclave.unseal.unsealer import GatedSealer, Unsealer
from tests.enclave.frost.common import FixedRng

BINDING = Binding(key_id="k" * 64, protocol="frost-ed25519", party_id=2, purpose="share")


async def new_node(tmp_path: Path, shares: int = 3, threshold: int = 2, name: str = "a") -> tuple[Unsealer, list[str]]:
    unsealer = Unsealer(tmp_path / f"{name}.json", FixedRng(name.encode()))
    return unsealer, [codec.encode(s) for s in await unsealer.init(shares, threshold)]


def test_a_share_survives_its_text_form_and_typing_habits() -> None:
    share = OperatorShare(b"\x01" * 8, 2, 3, 2, shamir.FIELD_PRIME - 1)
    text = codec.encode(share)
    assert text.startswith("MPCS-") and len(text.split("-")) == 17
    assert codec.decode(text) == share
    assert codec.decode(text.lower().replace("-", " ")) == share
    assert codec.decode(text.removeprefix("MPCS-")) == share
    assert "value" not in repr(share) and str(share.value) not in repr(share)


def test_every_single_typing_mistake_is_caught_by_the_checksum() -> None:
    text = codec.encode(OperatorShare(b"\x07" * 8, 3, 5, 4, 123456789))
    body = text.removeprefix("MPCS-")
    for i, c in enumerate(body):
        if c == "-":
            continue
        for wrong in string.ascii_uppercase + "234567":
            if wrong != c:
                with pytest.raises(ShareRefused) as err:
                    codec.decode(body[:i] + wrong + body[i + 1 :])
                assert err.value.reason in ("checksum", "malformed")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "malformed"),
        ("MPCS-ABCDE", "malformed"),
        ("MPCS-" + "1" * 80, "malformed"),
        ("hello world", "malformed"),
    ],
)
def test_what_is_not_a_share_is_refused_as_such(text: str, reason: str) -> None:
    with pytest.raises(ShareRefused) as err:
        codec.decode(text)
    assert err.value.reason == reason


async def test_exactly_threshold_shares_in_any_order_unseal(tmp_path: Path) -> None:
    first, texts = await new_node(tmp_path, 3, 2)
    blob = None
    for order in itertools.permutations(range(3), 2):
        u = Unsealer(first._path, FixedRng(b"restart"))  # a restart: sealed, nothing entered
        gated = GatedSealer(u)
        with pytest.raises(RequestRejected, match="node is sealed: 0 of 2"):
            gated.seal(b"x", BINDING)
        await u.enter(codec.decode(texts[order[0]]))
        assert u.sealed and u.status().current.entered == 1
        with pytest.raises(RequestRejected, match="node is sealed: 1 of 2"):
            gated.unseal(blob or b"", BINDING)
        message = await u.enter(codec.decode(texts[order[1]]))
        assert not u.sealed and "unsealed with 2 shares" in message
        if blob is None:
            blob = gated.seal(b"the key share", BINDING)
        assert gated.unseal(blob, BINDING) == b"the key share"  # the same data key whatever the shares


async def test_refused_shares_count_nothing(tmp_path: Path) -> None:
    u, texts = await new_node(tmp_path, 3, 3)
    _, foreign = await new_node(tmp_path, 3, 3, name="other-node")
    await u.enter(codec.decode(texts[0]))
    genuine = codec.decode(texts[1])
    wrong = OperatorShare(genuine.set_id, 3, 3, 2, (genuine.value + 1) % shamir.FIELD_PRIME)  # good checksum
    other_size = OperatorShare(genuine.set_id, 2, 3, 2, genuine.value)
    cases = [
        (codec.decode(texts[0]), "repeated", "already entered"),
        (codec.decode(foreign[1]), "foreign", "share of set"),
        (wrong, "wrong", "not the share issued"),
        (other_size, "parameters", "says 2 of 3"),
    ]
    for share, reason, message in cases:
        with pytest.raises(ShareRefused, match=message) as err:
            await u.enter(share)
        assert err.value.reason == reason
        assert u.sealed and u.status().current.entered == 1
    for text in texts[1:]:
        await u.enter(codec.decode(text))
    assert not u.sealed


async def test_an_altered_share_file_unseals_nothing_and_says_so(tmp_path: Path) -> None:
    u, texts = await new_node(tmp_path, 2, 2)
    path = u._path
    doc = json.loads(path.read_text())
    wrapped = bytearray(bytes.fromhex(doc["current"]["wrapped_data_key"]))
    wrapped[-1] ^= 1
    doc["current"]["wrapped_data_key"] = wrapped.hex()
    path.write_text(json.dumps(doc))
    altered = Unsealer(path)
    await altered.enter(codec.decode(texts[0]))
    with pytest.raises(RequestRejected, match="was altered after they were issued"):
        await altered.enter(codec.decode(texts[1]))
    assert altered.sealed and altered.status().current.entered == 0  # starts over


async def test_rekey_then_verify_swaps_the_sets_and_keeps_the_data_key(tmp_path: Path) -> None:
    u, old = await new_node(tmp_path, 3, 2)
    for text in old[:2]:
        await u.enter(codec.decode(text))
    blob = GatedSealer(u).seal(b"share", BINDING)
    with pytest.raises(BadInput, match="needs 2 shares"):
        await u.rekey([codec.decode(old[0])], 2, 2)
    with pytest.raises(ShareRefused, match="again"):
        await u.rekey([codec.decode(old[0]), codec.decode(old[0])], 2, 2)
    new = [codec.encode(s) for s in await u.rekey([codec.decode(old[2]), codec.decode(old[0])], 4, 3)]
    assert u.file is not None and u.file.pending is not None and u.file.pending.threshold == 3

    both = Unsealer(u._path)  # a restart while the new set waits: either set unseals
    for text in old[:2]:
        await both.enter(codec.decode(text))
    assert not both.sealed and both.file is not None and both.file.pending is not None

    with pytest.raises(ShareRefused, match="cannot use"):
        await u.verify([codec.decode(old[0]), codec.decode(old[1]), codec.decode(old[2])])
    await u.verify([codec.decode(t) for t in new[1:]])
    assert u.file is not None and u.file.pending is None and u.file.current.shares == 4

    after = Unsealer(u._path)
    with pytest.raises(ShareRefused, match="replaced by a rekey"):
        await after.enter(codec.decode(old[0]))
    for text in new[:3]:
        await after.enter(codec.decode(text))
    assert GatedSealer(after).unseal(blob, BINDING) == b"share"


async def test_unsealing_with_the_pending_set_completes_the_rekey(tmp_path: Path) -> None:
    u, old = await new_node(tmp_path, 2, 2)
    for text in old:
        await u.enter(codec.decode(text))
    new = [codec.encode(s) for s in await u.rekey([codec.decode(t) for t in old], 1, 1)]
    restarted = Unsealer(u._path)
    message = await restarted.enter(codec.decode(new[0]))
    assert "is now the current set" in message
    assert restarted.file is not None and restarted.file.pending is None
    assert restarted.file.current.set_id == codec.decode(new[0]).set_id


async def test_a_failed_write_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    u, old = await new_node(tmp_path, 2, 2)
    for text in old:
        await u.enter(codec.decode(text))
    before = u._path.read_bytes()

    def full_disk(tmp: Path, path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keyfile, "commit_file", full_disk)
    with pytest.raises(RequestRejected, match="No space left on device; nothing changed"):
        await u.rekey([codec.decode(t) for t in old], 3, 2)
    assert u._path.read_bytes() == before and u.file is not None and u.file.pending is None
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


async def test_init_never_replaces_a_share_file(tmp_path: Path) -> None:
    u, _ = await new_node(tmp_path)
    before = u._path.read_bytes()
    with pytest.raises(RequestRejected, match="already has a share set"):
        await u.init(3, 2)
    existing = keyfile.read(u._path)
    assert existing is not None
    with pytest.raises(SealerConfigError, match="already exists"):
        keyfile.create(u._path, existing, FixedRng(b"x"))
    assert u._path.read_bytes() == before
    assert oct(u._path.stat().st_mode & 0o777) == "0o600"


def test_a_temporary_file_of_an_interrupted_write_is_removed_at_start(tmp_path: Path) -> None:
    stale = tmp_path / ".shares.json.tmp-0011223344ab"
    stale.write_bytes(b"half a file")
    Unsealer(tmp_path / "shares.json")
    assert not stale.exists()
