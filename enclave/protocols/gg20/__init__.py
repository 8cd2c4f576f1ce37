"""GG20 threshold ECDSA on secp256k1 with CGGMP21's zero-knowledge proofs.

Each protocol runs as one `enclave.protocols.driver.Driver` per party and session; the host
relays `driver.take_outgoing()` and feeds `driver.receive(sender, payload)` (sender = the
authenticated channel's party id); `driver.result` ends as `Output(value)` or
`Abort(culprits, reason)`.

    keygen.start(session_id, self_id, parties, threshold, primes, rng, *, min_modulus_bits=2048)
        3 rounds -> KeyShare. `primes` is a `SafePrimePair` taken from `PreParamPool`.
    presign.start(session_id, share, signers, rng, *, path=())
        4 rounds -> Presignature (bound to share.key_id, the signer set and the non-hardened
        BIP32 `path` (enclave.protocols.gg20.bip32), made for that child key; single use).
    sign.start(session_id, share, presig, digest, consume, *, rule=MessageHash.RAW, path=())
        1 round -> Signature (r, s low-s, v in {0, 1}; to_bytes() = r || s || v, to_der()).
        The nonce is re-randomized by a hash of the presignature, key, path, hash rule and
        digest (Groth–Shoup), so it depends on what is signed. `consume(presig.presign_id)`
        runs before the share is computed into a message and must durably mark the
        presignature used (raising if it already was); every signer of the presignature
        signs. `path` must be the presignature's.
    message.digest_of(rule, message)
        the 32-byte digest of a named hash rule (RAW, SHA256, DOUBLE_SHA256, KECCAK256,
        ETH_PERSONAL), computed where the signer can see the message.

Party ids are the Shamir evaluation points: distinct ints in [1, q); `threshold` parties sign.
`KeyShare.to_bytes()` / `Presignature.to_bytes()` are the plaintexts to seal; each starts with
a version and suite header (`keyshare.HEADER`, `presignature.HEADER`) to use as AEAD
associated data. See each module for its rounds and the checks that name a culprit.
"""
