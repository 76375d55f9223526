#!/usr/bin/env bash
# CPU pilot of the alignment comparison of four methods (En-X, multi-way contrastive, DAP, multi-way +
# ALIGN-MLM; results in benchmarks/results/alignment_pilot.md): the untouched base and four recipes with
# the same budget, each evaluated on Tatoeba dev (5 languages, both directions) and BUCC-2018 de-en
# (sample, capped at 8,000 sentences per side with every gold pair kept). Run from the repository root:
#     bash benchmarks/alignment/run_pilot.sh > runs/pilot/pilot.log 2>&1
# Checkpoints and reports go to runs/pilot/ (ignored by git); the summary table is copied by hand into
# benchmarks/results/alignment_pilot.md.
set -euo pipefail
BIN=.venv/bin
DATA=../shared/data
OUT=runs/pilot
RECIPES="en_x multiway dap multiway_align_mlm"
mkdir -p "$OUT"

evaluate() {  # evaluate NAME MODEL_DIR
    "$BIN/xalign-train" eval --model-dir "$2" --max-seq-length 128 \
        --tatoeba-dir "$DATA/tatoeba" --bucc-dir "$DATA/bucc2018" --bucc-max 8000 \
        --out "$OUT/$1.eval.md" --json "$OUT/$1.eval.json"
}

"$BIN/python" -c 'from training.models.offline_e5 import ensure_offline_base; ensure_offline_base(".cache/xalign")'
echo "== eval base $(date -u +%FT%TZ)"
evaluate base .cache/xalign/multilingual-e5-small-e5s1
for recipe in $RECIPES; do
    echo "== train $recipe $(date -u +%FT%TZ)"
    "$BIN/xalign-train" train "benchmarks/alignment/$recipe.toml" --resume --no-progress
    echo "== eval $recipe $(date -u +%FT%TZ)"
    evaluate "$recipe" "$(ls -d "$OUT/$recipe"/step-* | tail -1)"
done
echo "== done $(date -u +%FT%TZ)"
