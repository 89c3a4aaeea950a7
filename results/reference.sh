#!/usr/bin/env bash
# The book's reference results, made with the commands below (each results folder also records the command that
# made it, with the ftbook version and commit, the date, the device and the wall time, in provenance.json).
# Usage: bash results/reference.sh [OUT]   (OUT defaults to results/; the datasets come from $FTBOOK_DATA or are
# downloaded once). Every command resumes where it stopped when run again. On one modern GPU the whole set takes
# minutes; on a 2-core CPU, hours.
set -euo pipefail
out=$(realpath -m "${1:-$(dirname "$0")}")
data=$(python -c "from ftbook.core import data_root; print(data_root().parent)")
cd "$data"
sizes="--size 160 --arch efficientnet_lite0 --seeds 5"
ftbook sizes hymenoptera_data clothing-dataset-small --per-class 5 20 50 100 $sizes \
    --steps 128 --probe-steps 1024 --out "$out/sizes"
# the convergence check: twice the budget, 3 seeds, where fine-tuning is slowest to settle (5) and where its best
# weights came at the last epoch (50, 100)
ftbook sizes clothing-dataset-small --per-class 5 50 100 --size 160 --arch efficientnet_lite0 --seeds 3 \
    --steps 256 --probe-steps 2048 --out "$out/sizes-doubled"
ftbook study hymenoptera_data --budgets 5 10 --seeds 5 --size 224 --arch efficientnet_lite0 --out "$out/study"
ftbook study clothing-dataset-small --per-class 50 --budgets 5 10 --seeds 5 --size 160 --arch efficientnet_lite0 \
    --out "$out/study"
runs=$(mktemp -d)  # the default recipe: its metrics and history are kept, not the model files
for name in hymenoptera_data clothing-dataset-small; do
    ftbook finetune "$name" --out "$runs/$name" --quiet
    mkdir -p "$out/recipe/$name" && cp "$runs/$name/metrics.json" "$runs/$name/history.csv" "$out/recipe/$name/"
done
rm -rf "$runs"
