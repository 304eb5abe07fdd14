# syntax=docker/dockerfile:1
# The order gateway as a container: `docker compose up` (docker-compose.yml) runs it with
# PostgreSQL. Two stages: the first builds wheels (the gateway's and every dependency's), the
# second installs only those wheels into a slim image and runs as an unprivileged user.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY gateway ./gateway
COPY connectors ./connectors
COPY mappings ./mappings
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_CONFIG=/etc/gateway/gateway.yaml \
    GATEWAY_LOG_FORMAT=json
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/gateway --create-home --shell /usr/sbin/nologin gateway
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels "order-gateway[postgres]" \
    && rm -rf /wheels
COPY deploy/gateway.yaml /etc/gateway/gateway.yaml
USER gateway
WORKDIR /var/lib/gateway
VOLUME ["/var/lib/gateway"]
# 9464: /healthz, /readyz, /metrics (admin: in deploy/gateway.yaml)
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
ENTRYPOINT ["gateway"]
CMD ["run"]
