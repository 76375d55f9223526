#!/usr/bin/env bash
# The container smoke test of deploy/: builds the Dockerfile's model, serve and train targets and runs
# deploy/docker-compose.yml for real with podman and podman-compose, every step of deploy/smoke/scenario.py
# (bootstrap, api healthy, the routes, a restart, retrain and promote under a streaming client, rollback,
# --scale api=2, Prometheus scraping both), then tears it all down (volumes too). Prints a summary; exits
# non-zero on any failure. Needs root on Debian bookworm (it installs podman, buildah, runc and debootstrap with
# apt-get if they are missing) and reaches PyPI and Debian's mirror; no image registry is needed: the Python
# base image and Prometheus are built from Debian packages when they are not there. Takes 20-60 minutes cold.
#   deploy/smoke.sh        (XALIGN_SMOKE_WORK: its folder, default /var/tmp/xalign-smoke; XALIGN_SMOKE_PORT: 18000)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${XALIGN_SMOKE_WORK:-/var/tmp/xalign-smoke}
mkdir -p "$work"
start=$(date +%s)
"$repo/deploy/smoke/engine.sh" "$work/venv"
"$repo/deploy/smoke/python-base.sh"
status=0
"$work/venv/bin/python" "$repo/deploy/smoke/scenario.py" --work "$work" || status=$?
echo "deploy/smoke.sh: $(($(date +%s) - start)) s in all (setup included), exit $status"
exit "$status"
