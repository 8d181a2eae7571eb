# The reputation service as a container image: `docker build -t reputation .`
# Configure it with REPUTATION_* environment variables (`reputation serve --help`
# lists them); give it REPUTATION_DATABASE_URL in production. deploy/ runs two
# nodes with PostgreSQL, Prometheus and Grafana.
ARG PYTHON_VERSION=3.12

# Build stage: the service and its dependencies in a virtual environment.
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reputation ./reputation
COPY sql ./sql
RUN pip install .

# Runtime stage: the virtual environment only (no compiler, no sources), run by
# an unprivileged user.
FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="reputation" \
      org.opencontainers.image.description="Scam phone number reputation service" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin reputation \
    && mkdir -p /var/lib/reputation && chown reputation /var/lib/reputation
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    REPUTATION_HOST=0.0.0.0 \
    REPUTATION_PORT=8080 \
    REPUTATION_DATA_DIR=/var/lib/reputation
USER 10001
WORKDIR /var/lib/reputation
EXPOSE 8080
# Liveness only (/readyz says whether the node can answer lookups).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['REPUTATION_PORT'], timeout=2)"
# On SIGTERM the node stops accepting, finishes what it holds and closes its pool.
STOPSIGNAL SIGTERM
# `serve` applies pending migrations at start-up (under an advisory lock, so
# several nodes starting at once do it once).
ENTRYPOINT ["reputation"]
CMD ["serve"]
