"""Signing under BIP32 non-hardened children, checked against an independent CKDpub.

The reference derivation below is written from the BIP32 text with coincurve's own point
arithmetic (PublicKey.add adds tweak·G), sharing no code with enclave.protocols.gg20.bip32.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from coincurve import PublicKey

from enclave.errors import BadInput
from enclave.group.secp256k1 import Secp256k1Group
from enclave.protocols.gg20.bip32 import derive, parse_path
from enclave.protocols.gg20.keyshare import KeyShare
from tests.enclave.gg20.conftest import check_signature, digest_of, run_presign, run_sign


def reference_ckd_pub(key: bytes, chain: bytes, path: tuple[int, ...]) -> tuple[bytes, bytes]:
    for index in path:
        assert index < 2**31
        i = hmac.new(chain, key + index.to_bytes(4, "big"), hashlib.sha512).digest()
        key = PublicKey(key).add(i[:32]).format(compressed=True)
        chain = i[32:]
    return key, chain


# BIP32 test vector 2, chain m -> m/0 (the first non-hardened step of the published vectors).
VECTOR2_M_KEY = bytes.fromhex("03cbcaa9c98c877a26977d00825c956a238e8dddfbd322cce4f74b0b5bd6ace4a7")
VECTOR2_M_CHAIN = bytes.fromhex("60499f801b896d83179a4374aeb7822aaeaceaa0db1f85ee3e904c4defbd9689")
VECTOR2_M0_KEY = bytes.fromhex("02fc9e5af0ac8d9b3cecfe2a888e2117ba3d089d8585886c9c826b6b22a98d12ea")
VECTOR2_M0_CHAIN = bytes.fromhex("f0909affaa7ee7abe5dd4e100598d4dc53cd709d5a5c2cac40e7412f232f7c9c")


def test_bip32_spec_vector() -> None:
    g = Secp256k1Group()
    d = derive(g, g.decode(VECTOR2_M_KEY), VECTOR2_M_CHAIN, (0,))
    assert g.encode(d.public_key) == VECTOR2_M0_KEY and d.chain_code == VECTOR2_M0_CHAIN
    assert reference_ckd_pub(VECTOR2_M_KEY, VECTOR2_M_CHAIN, (0,)) == (VECTOR2_M0_KEY, VECTOR2_M0_CHAIN)


@pytest.mark.parametrize("path", ["m/0", "m/1/2/3", "m/44/60/0/0/7", "m/2147483647"])
def test_signature_under_child_key(keys_2of3: dict[int, KeyShare], path: str) -> None:
    share = keys_2of3[1]
    steps = parse_path(path)
    child, chain = reference_ckd_pub(share.public_key, share.chain_code, steps)
    g = Secp256k1Group()
    ours = derive(g, share.public_point(g), share.chain_code, steps)
    assert g.encode(ours.public_key) == child and ours.chain_code == chain
    presigs = run_presign(keys_2of3, (2, 3), b"presign-bip32-" + path.encode(), path=steps).outputs()
    digest = digest_of(path.encode())
    sig = run_sign(keys_2of3, presigs, digest, b"sign-bip32-" + path.encode(), path=steps).outputs()[2]
    check_signature(sig, digest, child)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["m/0'", "m/1h", "0/1", "m/2147483648", "m/-1", "m/²", "m//1", "m/ 1"])
def test_hardened_and_malformed_paths_refused(keys_2of3: dict[int, KeyShare], path: str) -> None:
    g = Secp256k1Group()
    share = keys_2of3[1]
    with pytest.raises(BadInput):
        derive(g, share.public_point(g), share.chain_code, parse_path(path))
