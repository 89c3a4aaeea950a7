#!/usr/bin/env bash
# The book's reference results, made with the commands below (each results folder also records the command that
# made it, with the ftbook version and commit, the date, the device and the wall time, in provenance.json).
# Usage: bash results/reference.sh [OUT [PART...]]   OUT defaults to results/; PART is any of sizes, study, recipe,
# trust (default: all four). The datasets come from $FTBOOK_DATA or are downloaded once. Every command resumes where
# it stopped when run again. On a GPU the parts run side by side (each writes its own folder); on a CPU one after
# another: hours on 2 cores.
set -euo pipefail
out=$(realpath -m "${1:-$(dirname "$0")}")
parts=("${@:2}")
[ ${#parts[@]} -gt 0 ] || parts=(sizes study recipe trust)
data=$(python3 -c "from ftbook.core import data_root; print(data_root().parent)")
cd "$data"
lite0="--size 160 --arch efficientnet_lite0"

sizes() {  # the protocol of chapter 05b: rates chosen on validation, every run stopped early (size by size)
    ftbook data-size hymenoptera_data clothing-dataset-small --per-class 5 20 50 all $lite0 --seeds 5 \
        --out "$out/sizes"
}
study() {  # fine_tune(5) vs fine_tune(10): two small settings, then three near the CLI's (340 px: its own)
    ftbook study hymenoptera_data --budgets 5 10 --seeds 5 --size 224 --arch efficientnet_lite0 --out "$out/study"
    ftbook study clothing-dataset-small --per-class 50 --budgets 5 10 --seeds 5 $lite0 --out "$out/study"
    ftbook study hymenoptera_data --budgets 5 10 --seeds 5 --size 260 --arch efficientnet_lite2 --out "$out/study"
    ftbook study hymenoptera_data --budgets 5 10 --seeds 5 --size 340 --arch efficientnet_lite2 --out "$out/study"
    ftbook study clothing-dataset-small --budgets 5 10 --seeds 5 $lite0 --out "$out/study"
}
recipe() {  # the default recipe on both datasets, and what its models say about the other's photos: the unknown
    # flag on model.pth and its .onnx export, calibration before and after the temperature (chapter 07c). Only small
    # files are kept, not the models. RECIPE_RUNS=DIR reuses runs made by `ftbook finetune NAME --out DIR/NAME`.
    local runs=${RECIPE_RUNS:-} other split
    if [ -z "$runs" ]; then
        runs=$(mktemp -d)
        for name in hymenoptera_data clothing-dataset-small; do ftbook finetune "$name" --out "$runs/$name" --quiet; done
    fi
    for name in hymenoptera_data clothing-dataset-small; do
        local keep="$out/recipe/$name"
        mkdir -p "$keep" && cp "$runs/$name/metrics.json" "$runs/$name/history.csv" "$keep/"
        case $name in
            hymenoptera_data) other=clothing-dataset-small/test; own=hymenoptera_data/val; split=valid;;
            *) other=hymenoptera_data; own=clothing-dataset-small/validation; split=test;;
        esac
        ftbook export "$runs/$name/model.pth" --out "$runs/$name/model.onnx" > /dev/null
        for f in model.pth model.onnx; do
            ftbook predict "$runs/$name/$f" "$own" "$other" --out "$keep/predict_${f/./_}.csv" > /dev/null
        done
        ftbook evaluate "$runs/$name/model.pth" "$name" --split $split --ood "$other" --out "$keep/evaluate"
        if [ "$name" = clothing-dataset-small ]; then  # the suspected label mistakes: chapter 04b's first figure
            ftbook check "$name" --labels --out "$keep/labels" > /dev/null
        fi
    done
    [ -n "${RECIPE_RUNS:-}" ] || rm -rf "$runs"
}

trust() {  # chapter 07c: calibration and unknown scores per method under the data-size protocol, far and near
    # unknowns; it starts from the data-size trials at 20 per class (same keys, same protocol), so it runs last
    mkdir -p "$out/trust"
    for f in lr_selection.csv lr_selection_curves.csv; do
        [ -e "$out/trust/$f" ] || [ ! -e "$out/sizes/$f" ] || cp "$out/sizes/$f" "$out/trust/$f"
    done
    ftbook trust-study hymenoptera_data clothing-dataset-small --per-class 20 --seeds 5 $lite0 \
        --out "$out/trust"
}

for part in "${parts[@]}"; do
    case $part in sizes|study|recipe|trust) ;; *) echo "reference.sh: unknown part '$part'" >&2; exit 2;; esac
done
if python3 -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    pids=()
    for part in "${parts[@]}"; do
        [ "$part" = trust ] && continue  # after the others: it starts from the finished sizes trials
        ( "$part" 2>&1 | sed -u "s/^/[$part] /" ) &
        pids+=($!)
    done
    failed=0
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    if [[ " ${parts[*]} " == *" trust "* ]]; then trust 2>&1 | sed -u "s/^/[trust] /" || failed=1; fi
    exit $failed
fi
for part in "${parts[@]}"; do "$part"; done
