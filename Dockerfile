# syntax=docker/dockerfile:1.7
# xalign images. Targets (deploy/docker-compose.yml builds them):
#   model      torch CPU: builds the default models into /opt/xalign/store with `make model`
#   serve      no torch, the default store baked in, `xalign-serve`. On Python slim with onnxruntime and
#              faiss-cpu (extra `cpu`); with `--build-arg SERVE_DEPS=serve-deps-gpu` on the CUDA runtime with
#              onnxruntime-gpu and faiss-gpu (extra `gpu`), as deploy/docker-compose.gpu.yml builds it
#   train      torch: runs a recipe and publishes the result into a mounted store (`xalign-export retrain`)
# Versions: base images by tag, every Python package by deploy/constraints.txt, torch by its CPU index.
# Build-time pip settings, never kept in an image (deploy/smoke.sh passes the host's): the secret `pip.conf` (a
# pip configuration: a mirror's index-url, a proxy, `cert = /etc/pip-ca.pem`) and the secret `pip-ca` (a CA
# bundle, for a TLS-inspecting proxy), e.g. `--secret id=pip.conf,src=FILE --secret id=pip-ca,src=FILE`.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
# The stage `serve` is built on: serve-deps-cpu, or serve-deps-gpu (deploy/docker-compose.gpu.yml).
ARG SERVE_DEPS=serve-deps-cpu

# Evaluation data for the gate of the aligned default (Tatoeba and BUCC folders). Empty unless the build is
# given the folder, e.g. `docker build --build-context evaldata=../shared/data .`; without it `make model`
# publishes the base model only (the aligned default is never promoted unmeasured).
FROM scratch AS evaldata

# Wheels pip may take torch from (find-links), e.g. `--build-context wheels=DIR` holding torch-2.13.0+cpu; empty
# unless given.
FROM scratch AS wheels

# The Python every stage but the GPU one runs on.
FROM ${PYTHON_IMAGE} AS python
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# The sources and the pinned versions, copied into every Python stage.
FROM python AS source
COPY deploy/constraints.txt deploy/constraints.txt
COPY pyproject.toml README.md Makefile ./
COPY __init__.py ./
COPY modelstore modelstore
COPY runtime runtime
COPY service service
COPY training training
COPY export export
COPY client client

# torch first, from TORCH_INDEX (PyTorch's CPU index, or a mirror of it; from PyPI pip would pick a multi-GB CUDA
# build) and the `wheels` context (a +cpu wheel there wins over the same version on the index); before the
# sources, so a code change rebuilds from the package install on. Then the package.
FROM python AS torch
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf --mount=type=secret,id=pip-ca,target=/etc/pip-ca.pem \
    --mount=type=bind,from=wheels,target=/wheels \
    pip install --index-url "${TORCH_INDEX}" --find-links /wheels torch==2.13.0
COPY --from=source /app /app
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf --mount=type=secret,id=pip-ca,target=/etc/pip-ca.pem \
    pip install --constraint deploy/constraints.txt '.[cpu,train,export]'

FROM torch AS model
RUN apt-get update \
    && apt-get install -y --no-install-recommends make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*
COPY deltas deltas
COPY models models
COPY --from=evaldata / /eval-data/
# VENV=/usr/local: the Makefile's tools are the image's; the stamp says the install above is done.
RUN touch /usr/local/.installed \
    && make model VENV=/usr/local STORE=/opt/xalign/store CACHE=/tmp/xalign-cache \
        TATOEBA=/eval-data/tatoeba BUCC=/eval-data/bucc2018 \
    && rm -rf /tmp/xalign-cache \
    && xalign-store --store /opt/xalign/store verify

FROM torch AS train
RUN useradd --create-home --uid 10001 xalign \
    && mkdir -p /store /runs /data /app/.cache \
    && chown xalign:xalign /store /runs /app/.cache
USER 10001
# The recipe's base (the offline e5) is converted into /app/.cache on first use: mount a volume there.
CMD ["xalign-export", "retrain", "training/recipes/default_delta_distill.toml", \
     "--store", "/store", "--output", "/runs/default", "--data-root", "/data"]

# The serving dependencies, on either base: one build of onnxruntime and faiss each, nothing replaced later.
FROM python AS serve-deps-cpu
COPY --from=source /app /app
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf --mount=type=secret,id=pip-ca,target=/etc/pip-ca.pem \
    pip install --constraint deploy/constraints.txt '.[cpu]'

FROM ${CUDA_IMAGE} AS serve-deps-gpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
# Ubuntu 24.04's Python 3.12 (the CUDA images carry no Python); the wildcard keeps security rebuilds working.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.12.3-* python3-venv=3.12.3-* \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
WORKDIR /app
COPY --from=source /app /app
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf --mount=type=secret,id=pip-ca,target=/etc/pip-ca.pem \
    pip install --constraint deploy/constraints.txt '.[gpu]'

FROM ${SERVE_DEPS} AS serve
RUN useradd --create-home --uid 10001 xalign \
    && mkdir -p /store /data \
    && chown xalign:xalign /store /data
COPY --from=model /opt/xalign/store /opt/xalign/store
USER 10001
# A plain `docker run` serves the baked-in store; compose points XALIGN_STORE at its volume instead.
ENV XALIGN_STORE=/opt/xalign/store XALIGN_DATA_DIR=/data XALIGN_HOST=0.0.0.0 XALIGN_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2)"]
CMD ["xalign-serve"]
