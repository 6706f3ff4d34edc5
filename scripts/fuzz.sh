#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of every decoder of
# outside bytes; the targets are in fuzz/fuzz_targets/ and what each covers
# is in docs/security.md ("Fuzzing").
#
#   ./scripts/fuzz.sh                  every target, FUZZ_SECONDS (60) each
#   ./scripts/fuzz.sh payload advert   only these targets
#   FUZZ_SECONDS=600 ./scripts/fuzz.sh
#
# One job per target, one target after another. Corpora grow in
# fuzz/corpus/<target> and crashes land in fuzz/artifacts/<target> (both
# ignored by git); the last run's libFuzzer output is kept in
# fuzz/artifacts/<target>.log. Each run first writes the target's seeds
# (valid values built by fuzz/src/seeds.rs) into its corpus. At the end a
# table gives, per target, the wall and CPU seconds of the fuzzer process
# (getrusage through /usr/bin/time; the build comes first and is not
# counted), the inputs executed, the edges covered, the inputs in the
# corpus libFuzzer ends with, and the crashes. The exit
# status is non-zero if any target crashed. Reproduce a crash with
#   RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=~/.cache/palaver-fuzz-target \
#       cargo fuzz run -a <target> fuzz/artifacts/<target>/<file>
# and turn it into a regression test of the crate whose decoder failed.
#
# Toolchain: cargo-fuzz passes -Z flags, which stable rustc accepts with
# RUSTC_BOOTSTRAP=1 (no nightly needed). The targets are built with
# AddressSanitizer (its runtime ships with the stable x86_64 Linux
# toolchain; FUZZ_SANITIZER=none turns it off) and with debug assertions,
# so integer overflow panics as a crash too.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packages.sh

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
# Inputs up to 16 KiB: longer than an invite, an invite code, an advert or
# a directory request may be, so those size checks are fuzzed too; the
# larger limits (64 KiB entries, 1 MiB sync messages) are left to the
# crates' tests, as inputs that long would slow every target down.
max_len="${FUZZ_MAX_LEN:-16384}"
# More libFuzzer flags, e.g. FUZZ_ARGS="-only_ascii=1 -seed=7".
read -r -a extra_args <<<"${FUZZ_ARGS:-}"

export RUSTC_BOOTSTRAP=1
# A target directory of its own: the instrumented build shares nothing
# with the normal one.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/palaver-fuzz-target}"

ensure_packages time
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

fuzz=(cargo fuzz)
build_flags=(--debug-assertions --sanitizer "$sanitizer")

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list)
fi

# Build first, so that the build is not counted as fuzzing time.
if [ "$#" -gt 0 ]; then
    for target in "${targets[@]}"; do
        "${fuzz[@]}" build "${build_flags[@]}" "$target"
    done
else
    "${fuzz[@]}" build "${build_flags[@]}"
fi

bin_dir="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
# The last run's libFuzzer output of each target: fuzz/artifacts/<target>.log.
logs="fuzz/artifacts"

rows=()
failed=0
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    before="$(find "$artifacts" -type f | wc -l)"
    echo "== $target: ${seconds}s" >&2
    status=0
    # The binary cargo-fuzz built, run as `cargo fuzz run` would run it;
    # not through cargo, which would rebuild (and count the rebuild) when
    # a crate changed since the build.
    ASAN_OPTIONS="detect_odr_violation=0" PALAVER_FUZZ_SEED_DIR="$corpus" \
        /usr/bin/time -f '%e %U %S' -o "$logs/$target.time" \
        "$bin_dir/$target" -artifact_prefix="$artifacts/" \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
        -print_final_stats=1 ${extra_args[@]+"${extra_args[@]}"} "$corpus" \
        >"$logs/$target.log" 2>&1 || status=$?
    # GNU time puts "Command exited with non-zero status" before the numbers.
    read -r wall user sys < <(tail -n 1 "$logs/$target.time")
    rm -f "$logs/$target.time"
    cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -n 1)"
    # libFuzzer's last status line: edges covered and the inputs its corpus
    # kept (the directory also holds the seeds and earlier runs' inputs).
    last="$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$logs/$target.log" | tail -n 1)"
    edges="$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$last")"
    entries="$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")"
    crashes=$(($(find "$artifacts" -type f | wc -l) - before))
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        # libFuzzer failed without writing an input (e.g. the build broke).
        crashes="?"
    fi
    if [ "$status" -ne 0 ]; then
        failed=1
        echo "!! $target failed (exit $status); last lines of its log:" >&2
        tail -n 30 "$logs/$target.log" >&2
    fi
    rows+=("$(printf '%-20s %8s %12s %14s %7s %7s %8s' \
        "$target" "$wall" "$cpu" "${runs:-?}" "${edges:-?}" "${entries:-?}" "$crashes")")
done

echo
echo "fuzzing: $(date -u +%Y-%m-%dT%H:%MZ), ${seconds}s per target, sanitizer $sanitizer, $(nproc) CPUs"
printf '%-20s %8s %12s %14s %7s %7s %8s\n' \
    target seconds cpu_seconds executions edges corpus crashes
printf '%s\n' "${rows[@]}"
exit "$failed"
