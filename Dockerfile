# syntax=docker/dockerfile:1
# 审校助手 (sanshen): the bot as a container image. docs/deploy.md, "Container", says how to run it
# (deploy/compose.yaml: the bot and PostgreSQL 16).
#   docker build -t sanshen .
#   docker run -v ./config.toml:/etc/sanshen/config.toml:ro --env-file deploy/sanshen.env -p 127.0.0.1:8080:8080 sanshen

# Wheels of the package and every dependency (jieba has no wheel: it is built here).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN pip wheel --constraint constraints.txt --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib
# A font that draws Chinese for the report's chart (bot/exports/chart.py; without one the chart
# numbers the accounts instead of naming them).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels sanshen
# A dedicated user; its home is the data volume. With the config's default relative paths the
# SQLite file and the uploaded files land in it (./data/sanshen.db, ./data/files).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/sanshen --shell /usr/sbin/nologin sanshen \
    && install -d -o sanshen -g sanshen -m 0750 /var/lib/sanshen
USER sanshen
WORKDIR /var/lib/sanshen
VOLUME ["/var/lib/sanshen"]
# [server] port; keep [server] host = "0.0.0.0" (the default) inside a container.
EXPOSE 8080
# 200 only when healthy: 503 while starting or degraded (docs/deploy.md, Monitoring).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["sanshen", "serve", "-c", "/etc/sanshen/config.toml"]
