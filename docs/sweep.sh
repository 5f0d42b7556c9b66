#!/usr/bin/env bash
# Sweep of training settings on the stories domain: short runs, ranked by the
# held-out implicit reward accuracy `fspo train` logs at its checkpoints.
#   docs/sweep.sh FSPO DATA INIT OUT STAGE VARIANT STEPS "beta:lr ..."
# e.g. docs/sweep.sh ./fspo out/data out/runs/prefft/model.fspo /tmp/sweep pref plain 60 "0.05:3e-4 0.25:1e-3"
set -euo pipefail
fspo=$1 data=$2 init=$3 out=$4 stage=$5 variant=$6 steps=$7 grid=$8
mkdir -p "$out"
shots=4
[ "$variant" = zero-shot ] && shots=0
printf '%-8s %-8s %-6s %s\n' beta lr step "held-out accuracy / margin"
for point in $grid; do
	beta=${point%%:*} lr=${point##*:}
	run="$out/$stage-$variant-b$beta-lr$lr"
	"$fspo" train --data "$data" --out "$run" --stage "$stage" --variant "$variant" --shots "$shots" \
		--init "$init" --beta "$beta" --lr "$lr" --steps "$steps" > "$run.log" 2>&1 || { cat "$run.log"; exit 1; }
	grep "held-out implicit reward accuracy" "$run.log" | sed -E "s/.*step ([0-9]+): held-out implicit reward accuracy ([0-9.]+), margin ([-0-9.e]+)/\1 \2 \3/" |
		while read -r step acc margin; do printf '%-8s %-8s %-6s %s / %s\n' "$beta" "$lr" "$step" "$acc" "$margin"; done
done
