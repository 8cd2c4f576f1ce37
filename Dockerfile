# The host image: `mpc-signer` (signer/, the enclave package for socket mode, generated code).
# docker-compose.yml runs it three ways: `certs` (one-shot development credentials), `enclave`
# (`mpc-signer enclave --listen unix:///run/mpc-enclave/enclave.sock`, socket mode for machines
# without Nitro) and `signer` (`mpc-signer serve`). On AWS Nitro the enclave runs from
# enclave/Dockerfile instead (see docs/nitro.md) and the signer reaches it over vsock.
#
# Base pinned by digest (the same one as enclave/Dockerfile; refresh both deliberately). Every
# Python package comes from requirements/runtime.lock, hashes required: the lock the tested
# virtualenv and the enclave image install too. setuptools and wheel, which only build the
# project here, come from requirements/dev.lock the same way and leave with pip.

FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY requirements/runtime.lock requirements/dev.lock tools/lock_subset.py /build/
RUN python /build/lock_subset.py /build/dev.lock setuptools wheel > /build/build-tools.txt \
 && python -m venv /opt/mpc-signer \
 && /opt/mpc-signer/bin/pip install --require-hashes --no-deps --only-binary=:all: \
        -r /build/runtime.lock -r /build/build-tools.txt
COPY pyproject.toml README.md /src/
COPY signer/ /src/signer/
COPY enclave/ /src/enclave/
COPY door/ /src/door/
COPY mpc/ /src/mpc/
# The project itself, from source, without touching the pinned dependencies above.
RUN /opt/mpc-signer/bin/pip install --no-deps --no-build-isolation /src \
 && /opt/mpc-signer/bin/pip uninstall --yes pip setuptools wheel

FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

ENV PATH=/opt/mpc-signer/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# One unprivileged user for the signer and the socket-mode enclave: the enclave's unix socket is
# created mode 0600, so both containers must run as the same uid to share it.
RUN groupadd --system --gid 10001 mpc \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin mpc \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/mpc-signer /run/mpc-enclave /etc/mpc-signer/certs \
        /etc/mpc-signer/sealing

COPY --from=build /opt/mpc-signer /opt/mpc-signer

WORKDIR /var/lib/mpc-signer
USER 10001:10001

# gRPC (mTLS) and the Prometheus endpoint.
EXPOSE 9091 9464
ENTRYPOINT ["mpc-signer"]
CMD ["serve"]
