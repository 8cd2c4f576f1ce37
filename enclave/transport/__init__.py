"""Host <-> enclave channel: length-prefixed protobuf frames over vsock, unix or loopback TCP.

This package moves bytes and request ids; it knows nothing of protocols. The host side uses
only `signer.link.client` (an import contract keeps it so); the enclave side uses
`enclave.transport.server`.
"""
