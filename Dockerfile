# syntax=docker/dockerfile:1
# First cut (the deployment issue completes it): a model stage that builds the default store with torch,
# and a torch-free serving stage that copies the store in.
FROM python:3.11-slim-bookworm AS model
WORKDIR /src
RUN apt-get update \
    && apt-get install -y --no-install-recommends make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md Makefile ./
COPY modelstore modelstore
COPY training training
COPY export export
COPY service service
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir '.[train,export]'
RUN xalign-export default --store /store --cache /tmp/xalign-cache

FROM python:3.11-slim-bookworm AS serve
WORKDIR /app
COPY pyproject.toml README.md ./
COPY modelstore modelstore
COPY service service
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 xalign
COPY --from=model --chown=xalign /store /store
USER xalign
ENV XALIGN_STORE=/store XALIGN_HOST=0.0.0.0 XALIGN_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2)"]
ENTRYPOINT ["xalign-serve"]
