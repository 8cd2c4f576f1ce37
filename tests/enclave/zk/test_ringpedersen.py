from __future__ import annotations

import random

import gmpy2
import pytest

from enclave.crypto.ringpedersen import Params
from tests.enclave.zk.conftest import Party


def _plain(p: Params, x: int, y: int) -> int:
    return int(gmpy2.powmod(p.s, x, p.n) * gmpy2.powmod(p.t, y, p.n) % p.n)


def test_fixed_base_commitments_match_powmod(parties: tuple[Party, Party]) -> None:
    p = parties[0].params.public()
    rnd = random.Random(5)
    cases = [(0, 0), (1, -1), (-5, 2**3000), (2**6000 + 3, 7)]
    cases += [(rnd.getrandbits(2816) - 2**2815, -rnd.getrandbits(2816)) for _ in range(5)]
    for x, y in cases:
        assert p.commit(x, y) == _plain(p, x, y)


def test_owner_crt_check_agrees(parties: tuple[Party, Party]) -> None:
    party = parties[0]
    public = party.params.public()
    owned = Params(public.n, public.s, public.t, owner_key=party.key)
    assert owned == public  # the key is an accelerator, not part of the value
    x, y, e = 12345, -(2**2500), -77
    opened = public.commit(x, y)
    commitment = public.commit(3, 4)
    z1, z2 = 3 + e * x, 4 + e * y
    assert public.check(z1, z2, e, commitment, opened)
    assert owned.check(z1, z2, e, commitment, opened)
    assert not owned.check(z1 + 1, z2, e, commitment, opened)


@pytest.mark.parametrize("flaw", ["s=t", "s=1", "t=-1", "s=0", "even", "s>=n"])
def test_validate(parties: tuple[Party, Party], flaw: str) -> None:
    p = parties[0].params
    bad = {
        "s=t": Params(p.n, p.t, p.t),
        "s=1": Params(p.n, 1, p.t),
        "t=-1": Params(p.n, p.s, p.n - 1),
        "s=0": Params(p.n, 0, p.t),
        "even": Params(p.n + 1, p.s, p.t),
        "s>=n": Params(p.n, p.s + p.n, p.t),
    }[flaw]
    assert p.validate() and not bad.validate()
