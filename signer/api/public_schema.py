"""The schema that server reflection serves: the public services' files and nothing else.

Reflection answers from a descriptor pool; the default pool holds every file this process
imported, the host↔enclave frames (`mpc/v1/enclave.proto`) included, so a caller could read the
internal schema with `grpcurl describe`. The pool built here holds the public API, health and
reflection files and their dependencies only.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor


def public_pool(files: Iterable[FileDescriptor]) -> descriptor_pool.DescriptorPool:
    """A pool with `files` and, first, everything they import."""
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: FileDescriptor) -> None:
        if file.name in added:
            return
        for dependency in file.dependencies:
            add(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        pool.Add(proto)
        added.add(file.name)

    for file in files:
        add(file)
    return pool
