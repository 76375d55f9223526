#!/usr/bin/env bash
# A stand-in for the Dockerfile's Python base image (ARG PYTHON_IMAGE), for a machine that reaches Debian's
# mirror but no image registry: Debian bookworm (debootstrap, minbase) with its Python 3.11, pip and venv, laid
# out like the official python slim image: `python` and `pip` in /usr/local/bin (a venv at /usr/local, so pip
# installs there and never into Debian's own Python), a bare system otherwise. Imported into podman's storage
# and tagged with the base image's name, so the Dockerfile builds unchanged.
#   deploy/smoke/python-base.sh [IMAGE]     (default: the Dockerfile's PYTHON_IMAGE; needs root, debootstrap)
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${1:-$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if podman image exists "$image"; then
    echo "python-base: $image is there"
    exit 0
fi
root=$(mktemp -d /var/tmp/xalign-python-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" \
    >"$root.log" 2>&1 || { tail -30 "$root.log"; exit 1; }
rm -f "$root.log"
# The official image's security and update suites too, so `apt-get install` in a stage sees the same packages.
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
chroot "$root" /usr/bin/python3 -m venv /usr/local
chroot "$root" /usr/local/bin/python -m pip --version >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
tar --numeric-owner -C "$root" -c . | podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$image" >/dev/null
echo "python-base: $image built from Debian bookworm ($(podman run --rm "$image" python --version))"
