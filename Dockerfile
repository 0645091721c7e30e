# syntax=docker/dockerfile:1
# OpenVLE Proxmox service: one image for `openvle api`, `openvle worker`, `openvle migrate`
# and `openvle doctor`. Multi-stage: uv resolves from uv.lock in a builder, the runtime
# stage gets the ready virtualenv and runs as a non-root user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# 1. dependencies only (cached until uv.lock or pyproject.toml change)
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
# 2. the project itself; README.md (the package's readme) comes only now, so editing it
#    leaves the dependency layer cached; alembic/ and alembic.ini sit beside src/
COPY README.md ./
COPY src ./src
COPY alembic ./alembic
COPY alembic.ini ./
RUN uv sync --frozen --no-dev

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 openvle \
 && useradd --system --uid 10001 --gid openvle --home-dir /app --shell /usr/sbin/nologin openvle
COPY --from=builder --chown=openvle:openvle /app /app
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    LOG_FORMAT=json
USER openvle
EXPOSE 8000
# Shell form (CMD-SHELL): the port is the one `openvle api` listens on, API_PORT, read when
# the check runs; and podman 4.3's Docker API splits exec-form arguments on spaces.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:${API_PORT:-8000}/health/live', timeout=4)"
CMD ["openvle", "api"]
