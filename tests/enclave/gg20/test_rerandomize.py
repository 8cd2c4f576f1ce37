"""Presignatures bound to what they sign (CVE-2025-66017): the re-randomized online signature,
the hash rules the enclave computes, and the path fixed at presigning.

Every signature is checked by libsecp256k1 (verify and recovery), OpenSSL and, for the
Ethereum rules, by eth_keys address recovery; every digest against an independent hash."""

from __future__ import annotations

import hashlib
import struct

import pytest
from coincurve import PublicKey
from Crypto.Hash import keccak as pycryptodome_keccak
from eth_keys import keys as eth_keys

from enclave.errors import BadInput, InvalidEncoding
from enclave.group.secp256k1 import ORDER, Secp256k1Group
from enclave.protocols.gg20 import sign
from enclave.protocols.gg20.bip32 import derive
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.protocols.gg20.message import MessageHash, digest_of
from enclave.protocols.gg20.presignature import HEADER, Presignature
from tests.enclave.gg20.conftest import UsedSet, check_signature, run_presign, run_sign

G = Secp256k1Group()
TEXT = b"transfer 1 ETH to 0x00000000000000000000000000000000000000aa"


def keccak256(data: bytes) -> bytes:
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


def eip191(message: bytes) -> bytes:
    return b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message


EXPECTED = {
    MessageHash.SHA256: lambda m: hashlib.sha256(m).digest(),
    MessageHash.DOUBLE_SHA256: lambda m: hashlib.sha256(hashlib.sha256(m).digest()).digest(),
    MessageHash.KECCAK256: keccak256,
    MessageHash.ETH_PERSONAL: lambda m: keccak256(eip191(m)),
}


def independent_delta(p: Presignature, rule: str, d: bytes) -> int:
    """The re-randomizer as documented in enclave.protocols.gg20.sign, written out again."""
    fields = [
        b"mpc-signer/gg20/rerandomize/v1",
        p.presign_id,
        p.key_id,
        b"".join(j.to_bytes(8, "big") for j in p.signers),
        p.r_point,
        p.public_key,
        b"".join(struct.pack(">I", i) for i in p.derivation_path),
        rule.encode(),
        d,
    ]
    data = b"".join(len(f).to_bytes(8, "big") + f for f in fields)
    return int.from_bytes(hashlib.sha512(data).digest(), "big") % ORDER


@pytest.mark.parametrize("rule", list(EXPECTED), ids=lambda r: r.value)
def test_each_hash_rule_signs_its_digest(keys_2of2: dict[int, KeyShare], rule: MessageHash) -> None:
    d = digest_of(rule, TEXT)
    assert d == EXPECTED[rule](TEXT)
    presigs = run_presign(keys_2of2, (1, 2), b"pre-rule-" + rule.value.encode()).outputs()
    sig = run_sign(keys_2of2, presigs, d, b"sign-rule-" + rule.value.encode(), rule=rule).outputs()[1]  # type: ignore[arg-type]
    check_signature(sig, d, keys_2of2[1].public_key)  # type: ignore[arg-type]
    expected = eth_keys.PublicKey.from_compressed_bytes(keys_2of2[1].public_key).to_checksum_address()
    recovered = eth_keys.Signature(sig.to_bytes()).recover_public_key_from_msg_hash(d)  # type: ignore[attr-defined]
    assert recovered.to_checksum_address() == expected
    if rule is MessageHash.ETH_PERSONAL:  # what eth_keys itself calls a personal message
        assert (
            eth_keys.Signature(sig.to_bytes()).recover_public_key_from_msg(eip191(TEXT)).to_checksum_address()
            == expected
        )  # type: ignore[attr-defined]


def test_rules_refuse_wrong_lengths() -> None:
    with pytest.raises(BadInput, match="32 bytes"):
        digest_of(MessageHash.RAW, b"\x00" * 31)
    with pytest.raises(BadInput, match="at most"):
        digest_of(MessageHash.SHA256, b"\x00" * (64 * 1024 + 1))
    assert digest_of(MessageHash.RAW, b"\x07" * 32) == b"\x07" * 32
    assert digest_of(MessageHash.ETH_PERSONAL, b"") == keccak256(b"\x19Ethereum Signed Message:\n0")


def test_the_nonce_depends_on_what_is_signed(keys_2of2: dict[int, KeyShare]) -> None:
    """Two signing requests on copies of one presignature (each copy with its own single-use
    record, as a host replaying a blob to two enclaves would try): the nonce point differs from
    R and between the requests, as the independently computed δ says, so no two signatures
    share r and a digest chosen after R was seen gains nothing."""
    presigs = run_presign(keys_2of2, (1, 2), b"pre-depends").outputs()
    p1: Presignature = presigs[1]  # type: ignore[assignment]
    r_x = G.x_coordinate(G.decode(p1.r_point))
    d = digest_of(MessageHash.KECCAK256, TEXT)
    seen = set()
    for rule, value in (
        (MessageHash.KECCAK256, d),
        (MessageHash.SHA256, d),
        (MessageHash.KECCAK256, digest_of(MessageHash.KECCAK256, TEXT + b"!")),
    ):
        sig = run_sign(keys_2of2, presigs, value, b"sign-depends-" + rule.value.encode(), rule=rule).outputs()[1]  # type: ignore[arg-type]
        check_signature(sig, value, keys_2of2[1].public_key)  # type: ignore[arg-type]
        delta = independent_delta(p1, rule.value, value)
        assert sig.r == G.x_coordinate(G.mul(G.decode(p1.r_point), delta)) % ORDER  # type: ignore[attr-defined]
        assert sig.r != r_x  # type: ignore[attr-defined]
        seen.add(sig.r)  # type: ignore[attr-defined]
    assert len(seen) == 3  # the hash rule alone changes the nonce too


@pytest.mark.parametrize("path", [(), (0,), (44, 60, 0, 0, 7)], ids=["root", "m/0", "m/44/60/0/0/7"])
def test_path_fixed_at_presigning(keys_2of3: dict[int, KeyShare], path: tuple[int, ...]) -> None:
    share = keys_2of3[1]
    child = G.encode(derive(G, share.public_point(G), share.chain_code, path).public_key)
    tag = "-".join(map(str, path)).encode()
    presigs = run_presign(keys_2of3, (1, 3), b"pre-path-" + tag, path=path).outputs()
    assert all(p.derivation_path == path and p.public_key == child for p in presigs.values())  # type: ignore[attr-defined]
    d = digest_of(MessageHash.KECCAK256, TEXT)
    sig = run_sign(keys_2of3, presigs, d, b"sign-path-" + tag, path=path, rule=MessageHash.KECCAK256).outputs()[1]  # type: ignore[arg-type]
    check_signature(sig, d, child)  # type: ignore[arg-type]
    assert PublicKey.from_signature_and_message(sig.to_bytes(), d, hasher=None).format() == child  # type: ignore[attr-defined]


def test_a_path_chosen_after_presigning_is_refused(keys_2of2: dict[int, KeyShare]) -> None:
    presigs = run_presign(keys_2of2, (1, 2), b"pre-late-path").outputs()
    root_only: Presignature = presigs[1]  # type: ignore[assignment]
    hook = UsedSet()
    d = digest_of(MessageHash.SHA256, TEXT)
    with pytest.raises(BadInput, match="another derivation path"):
        sign.start(b"late", keys_2of2[1], root_only, d, hook, rule=MessageHash.SHA256, path=(7,))
    assert hook.used == set()  # nothing consumed, no share made
    on_path = run_presign(keys_2of2, (1, 2), b"pre-on-path", path=(7,)).outputs()[1]
    with pytest.raises(BadInput, match="another derivation path"):
        sign.start(b"late-2", keys_2of2[1], on_path, d, hook, rule=MessageHash.SHA256, path=())  # type: ignore[arg-type]
    assert hook.used == set()


def test_serialized_presignature_keeps_its_path(keys_2of2: dict[int, KeyShare]) -> None:
    p: Presignature = run_presign(keys_2of2, (1, 2), b"pre-ser-path", path=(3, 4)).outputs()[1]  # type: ignore[assignment]
    assert Presignature.from_bytes(p.to_bytes()) == p
    old = b"mpc-signer/gg20/presignature/v1/secp256k1" + p.to_bytes()[len(HEADER) :]
    with pytest.raises(InvalidEncoding, match="v2"):
        Presignature.from_bytes(old)
