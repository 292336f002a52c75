# syntax=docker/dockerfile:1
# The tcai daemon image (docs/deployment.md). Two stages: the builder turns the source
# into wheels (tcai's own, with the templates inside, and every dependency's); the
# runtime installs them into a slim Python without compilers, pip caches or the source.
# No secret is baked in: configuration comes from the environment at run time.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tcai ./tcai
COPY templates ./templates
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TCAI_ENV=production \
    HOST=0.0.0.0 \
    PORT=5000 \
    LOG_DIR=/var/log/tcai

# The wheels come in through a bind mount, so they never become a layer of the image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/tcai-*.whl

# A fixed UID/GID (10001) so volumes and Kubernetes' runAsUser can name it.
RUN groupadd --system --gid 10001 tcai \
    && useradd --system --uid 10001 --gid tcai --home-dir /var/lib/tcai \
       --shell /usr/sbin/nologin tcai \
    && install -d -o tcai -g tcai -m 0750 /var/lib/tcai /var/log/tcai

WORKDIR /var/lib/tcai
# Logs and the lead spool ($LOG_DIR/lead-spool.jsonl) must outlive the container.
VOLUME ["/var/log/tcai"]
USER 10001:10001
EXPOSE 5000

# `tcai health` exits 1 when the daemon is unreachable or its database is down.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["/bin/sh", "-c", "tcai health --url \"http://127.0.0.1:${PORT}\""]

# Serve by default; anything else is a tcai command: `docker run IMAGE db upgrade`.
# Migrations run only when asked (compose.yaml's one-shot `migrate` service).
ENTRYPOINT ["tcai"]
CMD ["serve"]
