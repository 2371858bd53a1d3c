#!/usr/bin/env bash
# Wall time of the default benchmark under an older commit and under the working tree, run in
# turns (old, new, old, new, ...) from empty stores, because a shared machine's speed drifts over
# minutes. The old code runs from a git worktree laid out as the installed package (ppbench and
# ppbench.plugins) and put first on PYTHONPATH; the new one is the installed working tree.
#
#   bash benchmarks/ab_default_run.sh f17748e [ROUNDS] [OUT]     (default: 2 rounds, /tmp/ppbench-ab)
#
# Prints one line per run: which, round, seconds. Nothing else may use the CPU meanwhile.
set -euo pipefail
old_rev="${1:?usage: ab_default_run.sh OLD_REV [ROUNDS] [OUT]}"
rounds="${2:-2}"
out="${3:-/tmp/ppbench-ab}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
spec="$repo/leaderboards/synthfaces/benchmark.toml"

rm -rf "$out" && mkdir -p "$out"
git -C "$repo" worktree add -q --detach "$out/old-tree" "$old_rev"
trap 'git -C "$repo" worktree remove --force "$out/old-tree"' EXIT
mkdir -p "$out/old-package"
cp -r "$out/old-tree/harness" "$out/old-package/ppbench"
cp -r "$out/old-tree/plugins" "$out/old-package/ppbench/plugins"

for round in $(seq 1 "$rounds"); do
    for which in old new; do
        run_dir="$out/$which$round"
        mkdir -p "$run_dir"
        started=$(date +%s.%N)
        if [[ $which == old ]]; then
            (cd "$run_dir" && PYTHONPATH="$out/old-package" ppbench run "$spec" --store r.db \
                --cache cache --no-progress >out.txt 2>err.txt)
        else
            (cd "$run_dir" && env -u PYTHONPATH ppbench run "$spec" --store r.db --cache cache \
                --no-progress --profile-run prof.csv >out.txt 2>err.txt)
        fi
        echo "$which $round $(echo "$(date +%s.%N) - $started" | bc)"
    done
done
