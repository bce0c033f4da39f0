# repwatch: `docker run -v $PWD/config.yaml:/app/config.yaml -v repwatch-data:/app/data -e SLACK_BOT_TOKEN repwatch crawl`
# (or `… -p 127.0.0.1:8080:8080 repwatch web --host 0.0.0.0` for the team inbox)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 REPWATCH_CONFIG=/app/config.yaml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY spiders ./spiders
COPY monitor ./monitor
COPY alerts ./alerts
COPY models ./models
RUN pip install '.[postgres,queue]' && useradd --create-home --uid 10001 repwatch && mkdir -p /app/data && chown repwatch /app/data
COPY config.yaml ./config.yaml

USER repwatch
VOLUME ["/app/data"]
# The team inbox: `docker run -p 127.0.0.1:8080:8080 … repwatch web --host 0.0.0.0` (docs/inbox.md)
EXPOSE 8080
# Migrations run at start: every repwatch command upgrades the schema before it touches the database.
ENTRYPOINT ["repwatch"]
CMD ["crawl"]
