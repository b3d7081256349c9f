# Parley in one image.
#   docker build -t parley .
#   docker run -p 8000:8000 -e PARLEY_ADMIN_TOKEN=change-me -v parley-data:/data parley
# The source stays in /opt/parley: Alembic's migrations/ and alembic.ini are read from there.
FROM python:3.11-slim
WORKDIR /opt/parley
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-cache-dir -e . \
 && useradd --system --uid 10001 --home-dir /data parley \
 && mkdir -p /data && chown parley /data
USER parley
WORKDIR /data
ENV PARLEY_HOST=0.0.0.0 \
    PARLEY_PORT=8000 \
    PARLEY_DATABASE_URL=sqlite+aiosqlite:////data/parley.db \
    PARLEY_LOG_FORMAT=json
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"
CMD ["parley", "serve"]
