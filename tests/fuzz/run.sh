#!/usr/bin/env bash
# run.sh BUILD_DIR [TARGET...]: builds the libFuzzer targets (tests/fuzz/CMakeLists.txt, clang)
# in BUILD_DIR/fuzz, replays every kept regression input, then fuzzes each target for
# FUZZ_SECONDS (default 60; CTest's fuzz_short uses a few). Seeds: tests/fuzz/seeds, conf/pli.yaml
# and the corpus ($PLI_CORPUS_DIR) in place (read only; new inputs go to BUILD_DIR/fuzz/corpus/TARGET).
# Exit 77 (skipped) when clang-14 or its libFuzzer runtime is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR [TARGET...]}" && pwd)/fuzz
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(mime_rewrite dsn_parse subject_tags config_load pdf_read)
seconds=${FUZZ_SECONDS:-60}
corpus=${PLI_CORPUS_DIR:-$src/../shared/corpus}

command -v clang++-14 >/dev/null || { echo "SKIP: clang++-14 missing (scripts/install-deps)"; exit 77; }
ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
    { echo "SKIP: libFuzzer runtime missing (libclang-rt-14-dev)"; exit 77; }

export CCACHE_BASEDIR=$src
# One build at a time (CTest may start this while `make fuzz` runs).
exec 9>"$build.lock"
flock 9
if [ ! -f "$build/build.ninja" ]; then
    cmake -S "$here" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 >"$build.configure.log" 2>&1 ||
        { cat "$build.configure.log"; exit 1; }
fi
cmake --build "$build" -j "${FUZZ_JOBS:-2}" >"$build.build.log" 2>&1 || { tail -n 40 "$build.build.log"; exit 1; }
flock -u 9

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1
status=0
for t in "${targets[@]}"; do
    bin=$build/fuzz_$t
    work=$build/corpus/$t
    mkdir -p "$work" "$build/crashes"
    seeds=()
    [ -d "$here/seeds/$t" ] && seeds+=("$here/seeds/$t")
    case $t in
        mime_rewrite) [ -d "$corpus/mime" ] && seeds+=("$corpus/mime") ;;
        dsn_parse) [ -d "$corpus/dsn" ] && seeds+=("$corpus/dsn") ;;
        config_load) cp "$src/conf/pli.yaml" "$work/pli.yaml" ;;
    esac
    # 1. Every kept regression input (a crash found before) still runs clean.
    regressions=("$here/regressions/$t"/*)
    if [ -e "${regressions[0]}" ]; then
        "$bin" -rss_limit_mb=2048 "${regressions[@]}" >"$build/$t.regressions.log" 2>&1 ||
            { echo "FAIL: $t: a regression input crashes again"; tail -n 40 "$build/$t.regressions.log"; status=1; continue; }
        echo "ok - $t: ${#regressions[@]} regression input(s)"
    fi
    # 2. Fuzz for a bounded time; a crash leaves its input in BUILD/fuzz/crashes.
    if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
        -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 "$work" "${seeds[@]}" \
        >"$build/$t.log" 2>&1; then
        echo "ok - $t: $(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$build/$t.log" | grep -oE '[0-9]+$') runs in ${seconds}s, corpus $(ls "$work" | wc -l)"
    else
        echo "FAIL: $t (log: $build/$t.log; input in $build/crashes/)"
        grep -E 'ERROR|SUMMARY|#[0-9] 0x' "$build/$t.log" | head -n 12 || true
        status=1
    fi
done
exit $status
