# Build stage: install the service and its dependencies into a virtual environment.
FROM python:3.12-slim AS build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reputation ./reputation
COPY sql ./sql
RUN pip install --no-cache-dir .

# Runtime stage: the virtual environment only, run by an unprivileged user.
FROM python:3.12-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin reputation \
    && mkdir -p /var/lib/reputation && chown reputation /var/lib/reputation
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    REPUTATION_HOST=0.0.0.0 \
    REPUTATION_PORT=8080 \
    REPUTATION_DATA_DIR=/var/lib/reputation
USER reputation
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['REPUTATION_PORT'], timeout=2)"
# Migrations are applied by `serve` at start-up (under an advisory lock).
ENTRYPOINT ["reputation"]
CMD ["serve"]
