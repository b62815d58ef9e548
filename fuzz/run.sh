#!/usr/bin/env bash
# Builds every fuzz target once, runs each for SECONDS (default 30) from the committed seeds,
# and prints a table; exits 1 if any target crashed, timed out or ran out of memory.
#
#   fuzz/run.sh [SECONDS]
#
# Environment: CARGO_TARGET_DIR (default /work/.cache/fuzz-target, else ~/.cache/umbra-fuzz-target),
# FUZZ_OUT (scratch corpora, logs and crash inputs; default a new directory under $TMPDIR),
# FUZZ_TARGETS (space-separated subset), FUZZ_SANITIZER (address, the default, or none).
set -euo pipefail

seconds=${1:-30}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

if [[ -z ${CARGO_TARGET_DIR:-} ]]; then
    if [[ -d /work/.cache && -w /work/.cache ]]; then
        CARGO_TARGET_DIR=/work/.cache/fuzz-target
    else
        CARGO_TARGET_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/umbra-fuzz-target
    fi
fi
export CARGO_TARGET_DIR
# cargo-fuzz passes -Z flags (sanitizers, coverage passes); this lets a stable toolchain accept
# them instead of requiring a nightly.
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-address}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Outside the clone: libFuzzer writes new inputs into its first corpus directory only, so the
# committed seeds (passed second) stay untouched and a CI checkout stays clean.
out=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/umbra-fuzz.XXXXXX")}
mkdir -p "$out"

targets=${FUZZ_TARGETS:-$(for f in fuzz_targets/*.rs; do basename "$f" .rs; done)}

echo "== building (sanitizer: $sanitizer, target dir: $CARGO_TARGET_DIR)"
build_start=$SECONDS
# -O: fuzz optimised code, as it ships; -a: with debug assertions and overflow checks on.
cargo fuzz build -O -a --sanitizer "$sanitizer"
echo "== built in $((SECONDS - build_start)) s"
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=$CARGO_TARGET_DIR/$triple/release

failed=0
rows=()
# Per run, so a reused FUZZ_OUT keeps earlier crash inputs without counting them again.
run_id=$(date -u +%Y%m%dT%H%M%SZ)
for t in $targets; do
    corpus=$out/corpus/$t
    artifacts=$out/artifacts/$run_id/$t
    log=$out/$t.log
    mkdir -p "$corpus" "$artifacts"
    echo "== $t: ${seconds} s"
    status=0
    # -timeout: one input taking 10 s is a hang worth failing on; -rss_limit_mb: libFuzzer's
    # default, said out loud.
    "$bin_dir/$t" "$corpus" "seeds/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[A-Za-z]*\).*/\1/p' <<<"$last")
    crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
    if ((status != 0 || crashes > 0)); then
        failed=1
        echo "!! $t failed (exit $status); log: $log"
        grep -E 'ERROR|panicked|SUMMARY' "$log" | head -n 5 || true
        for a in "$artifacts"/*; do
            [[ -f $a ]] || continue
            echo "!! input: $a"
            echo "!! base64: $(base64 -w0 "$a")"
        done
        ((crashes > 0)) || crashes=1
    fi
    rows+=("$(printf '%-16s %12s %8s %8s %14s %8s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes")")
done

echo
echo "== summary: ${seconds} s per target; logs, scratch corpora and crash inputs in $out"
printf '%-16s %12s %8s %8s %14s %8s\n' target executions cov ft corpus crashes
printf '%s\n' "${rows[@]}"
exit "$failed"
