# syntax=docker/dockerfile:1
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
       --home-dir /nonexistent --shell /usr/sbin/nologin thumbservice \
    && install -d -o thumbservice -g thumbservice -m 0750 \
       /tmp/thumbservice /var/lib/thumbservice
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    TMP_DIR=/tmp/thumbservice \
    LOCAL_STORE_DIR=/var/lib/thumbservice/thumbnails \
    SAMPLE_ARCHIVE_DIR=/var/lib/thumbservice/sample-archive
# TMP_DIR and the local store are writable by the service; mount volumes there to keep or
# size them (TMP_DIR needs room for the largest frames being rendered at once).
WORKDIR /var/lib/thumbservice
USER thumbservice:thumbservice
EXPOSE 8080
# The exec form makes the service PID 1, so SIGTERM reaches it: it stops accepting, finishes
# the requests in flight (SHUTDOWN_TIMEOUT) and exits. Give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
# No curl here: the service's own check, on its own PORT.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "thumbservice.entrypoints.healthcheck"]
ENTRYPOINT ["thumbservice"]
