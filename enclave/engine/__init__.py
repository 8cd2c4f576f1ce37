"""Protocol sessions inside the enclave: the `SessionEngine` the enclave service plugs in.

    engine = Engine(sealer, config=EngineConfig(...), prime_source=..., policy=...)
    EnclaveService(sessions=engine, preparams=engine)

Modules: `engine` (registry, deadlines, caps, threads), `live` (one live session: phases of drivers, party
mapping, message routing), `frost` and `gg20` (protocol adapters; `frost_presign`, FROST nonce batches and
one-round signing), `common` (request checks,
key-share and signer-set mapping), `singleuse` (per-boot sealing and the used-record of
presignatures and pre-parameters), `blobs` (sealed records), `keyids`,
`approval` (policy approval bytes). The command-line options and the construction live beside
the entry point: enclave/options.py and enclave/__main__.py.
"""

from enclave.engine.engine import Engine, EngineConfig

__all__ = ["Engine", "EngineConfig"]
