# thumbservice as a container image: `make image` builds it, `make image-test` starts it and
# fetches a thumbnail. Dependencies come from uv.lock, exactly as `make install` has them.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Builder: the locked dependencies, then the project itself, into /opt/venv.
FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /build
# Dependencies first, in a layer of their own: it is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python
COPY README.md ./
COPY src ./src
# The project as a regular package (a wheel's contents), not linked to /build.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --python /usr/local/bin/python

# Runtime: the same Python, the environment, a user without privileges. No compiler, no uv.
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 thumbservice \
    && useradd --system --uid 10001 --gid thumbservice --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin thumbservice
COPY --from=builder /opt/venv /opt/venv
# Everything the service writes is under /tmp, so that the image runs with a read-only root
# and /tmp alone writable (a tmpfs, an emptyDir): TMP_DIR, and the local store, the sample
# archive and HOME (libraries' caches) of a development run. Mount a volume on /tmp sized for
# the largest frames rendered at once, and one on LOCAL_STORE_DIR to keep local thumbnails.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    HOST=0.0.0.0 \
    PORT=8080 \
    TMP_DIR=/tmp/thumbservice \
    LOCAL_STORE_DIR=/tmp/thumbnails \
    SAMPLE_ARCHIVE_DIR=/tmp/sample-archive
WORKDIR /tmp
# Numeric, so that Kubernetes' runAsNonRoot can tell it is not root without a runAsUser.
USER 10001:10001
EXPOSE 8080
# The exec form makes the service PID 1, so SIGTERM reaches it: it stops accepting, finishes
# the requests in flight (SHUTDOWN_TIMEOUT) and exits. Give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
# No curl here: the service's own check, on its own PORT.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "thumbservice.entrypoints.healthcheck"]
ENTRYPOINT ["thumbservice"]
