#!/usr/bin/env bash
# A venv with infinity-emb 0.0.78 (CPU only) for benchmarks/infinity_server.py; idempotent.
#
#     bash benchmarks/infinity_setup.sh [VENV]        # default /var/tmp/xalign-infinity
#
# torch goes in first and stays pinned to 2.13.0 (pip resolves it to the local CPU wheel in
# /opt/wheels); left free, pip would pull a CUDA torch and several GB of nvidia-* wheels.
set -euo pipefail

VENV="${1:-/var/tmp/xalign-infinity}"
TORCH="torch==2.13.0"
INFINITY="infinity-emb[server,torch,optimum]==0.0.78"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PIP=(nice -n 10 "$VENV/bin/python" -m pip install --quiet)

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
# The lead's pins; none conflicts. infinity-emb 0.0.78 states numpy<2 and sentence-transformers<4 itself,
# transformers<4.58 it does not (pip picks 4.57.x). optimum[onnxruntime]>=1.24 resolves to optimum 2.1
# with optimum-onnx 0.1 (ORTModel moved there), which infinity's ONNX engine runs unchanged.
cat >"$CONSTRAINTS" <<EOF
$TORCH
transformers<4.58
sentence-transformers<4
numpy<2
EOF

"${PIP[@]}" "$TORCH"
"${PIP[@]}" -c "$CONSTRAINTS" "$TORCH" "$INFINITY"

# The pins held: torch is the CPU build and no CUDA wheel came with anything.
LISTED="$("$VENV/bin/python" -m pip list --format=freeze)"
if ! grep -qx 'torch==2.13.0\(+cpu\)\?' <<<"$LISTED"; then
    echo "torch is not 2.13.0: $(grep -i '^torch==' <<<"$LISTED")" >&2
    exit 1
fi
if grep -qi '^nvidia-' <<<"$LISTED"; then
    echo "nvidia packages were installed:" >&2
    grep -i '^nvidia-' <<<"$LISTED" >&2
    exit 1
fi
grep -iE '^(torch|onnxruntime|optimum|transformers|sentence-transformers|numpy|infinity[-_]emb)==' <<<"$LISTED"
