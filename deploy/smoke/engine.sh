#!/usr/bin/env bash
# Sets up the container engine deploy/smoke.sh uses: Debian's podman and buildah, runc as the OCI runtime, no
# default rlimits (a sandboxed host may refuse to raise them), and podman-compose plus the smoke's client
# packages in a venv. Idempotent; needs root and apt-get when podman is missing.
#   deploy/smoke/engine.sh TOOLS_VENV
set -euo pipefail
venv=$1
repo=$(cd "$(dirname "$0")/../.." && pwd)
# iptables: netavark (podman's network stack) runs it for every container with a network, builds included; a
# fresh machine without it fails with "netavark: No such file or directory".
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null ||
    ! command -v iptables >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends podman buildah runc debootstrap fuse-overlayfs uidmap \
        netavark aardvark-dns iptables >/dev/null
fi
# A drop-in, so the host's own containers.conf is left as it is.
mkdir -p /etc/containers/containers.conf.d
cat >/etc/containers/containers.conf.d/50-xalign-smoke.conf <<CONF
# Written by deploy/smoke/engine.sh (xalign's container smoke test).
[containers]
default_ulimits = []

[engine]
runtime = "runc"
CONF
if [ ! -x "$venv/bin/podman-compose" ]; then
    python3 -m venv "$venv"
    # podman-compose 1.6 reads additional_contexts and service_completed_successfully; the client libraries
    # at the versions of deploy/constraints.txt.
    "$venv/bin/pip" install --quiet --constraint "$repo/deploy/constraints.txt" podman-compose==1.6.0 openai httpx
fi
