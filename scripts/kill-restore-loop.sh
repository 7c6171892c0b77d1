#!/usr/bin/env bash
# Kills the word_count example with SIGKILL again and again at random moments, restoring it
# each time from its checkpoint directory at a random parallelism, then lets a last run
# finish, and compares the committed output with an independent count made by awk.
# The long version of `repeated_sigkills_…` in tests/word_count_recovery.rs; see
# docs/fault-tolerance.md.
#
#   scripts/kill-restore-loop.sh                       # 1 GB input, 25 kills
#   BYTES=4e9 KILLS=100 SEED=7 scripts/kill-restore-loop.sh
#
# Settings (environment): BYTES input size (default 1e9), KILLS (25), SEED (random; printed,
# set it to replay a run), MAX_WAIT_MS longest time a run lives before its kill (1200;
# longer waits let a fast machine finish the input before the kills are used up),
# INTERVAL_MS checkpoint interval (300), WORKDIR (a new temporary directory, kept on failure).
set -euo pipefail

BYTES=${BYTES:-1e9}
KILLS=${KILLS:-25}
SEED=${SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
MAX_WAIT_MS=${MAX_WAIT_MS:-1200}
INTERVAL_MS=${INTERVAL_MS:-300}
WORKDIR=${WORKDIR:-$(mktemp -d -t eddy-kill-loop.XXXXXX)}
mkdir -p "$WORKDIR"
RANDOM=$SEED
export LC_ALL=C

cd "$(dirname "$0")/.."
echo "seed $SEED, $KILLS kills, input $BYTES bytes, work directory $WORKDIR"
cargo build --release --quiet --example word_count --example gen_words
bin=target/release/examples
input=$WORKDIR/input.tsv
checkpoints=$WORKDIR/checkpoints
output=$WORKDIR/output
[ -f "$input" ] || "$bin/gen_words" "$input" "$BYTES" "$SEED"

# Committed output: every file a reader does not skip (names starting with `.` or `_`).
committed() {
    find "$output" -maxdepth 1 -type f ! -name '.*' ! -name '_*' -exec cat {} + 2>/dev/null || true
}

# One run at parallelism $1; restores when a checkpoint has committed output (a run killed
# before any did starts afresh, as the example's docs say).
start_run() {
    local args=(--input "$input" --timestamped --parallelism "$1" --checkpoint-dir "$checkpoints"
        --checkpoint-interval-ms "$INTERVAL_MS" --exactly-once-output "$output")
    if [ -n "$(committed | head -c 1)" ]; then
        args+=(--restore "$checkpoints")
    fi
    "$bin/word_count" "${args[@]}" >>"$WORKDIR/stdout" 2>>"$WORKDIR/stderr" &
    pid=$!
}

kills=0
started=$(date +%s)
while [ "$kills" -lt "$KILLS" ]; do
    parallelism=$((RANDOM % 4 + 1))
    wait_ms=$(((RANDOM * 32768 + RANDOM) % (MAX_WAIT_MS - 100) + 100))
    start_run "$parallelism"
    sleep "$(printf '0.%03d' $((wait_ms % 1000)))"
    sleep $((wait_ms / 1000))
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || { echo "a run failed; see $WORKDIR/stderr"; exit 1; }
        echo "the input ran out after $kills kills"
        break
    fi
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
    echo "kill $kills: p=$parallelism after ${wait_ms} ms; $(committed | wc -l) rows committed"
    duplicates=$(committed | cut -d, -f1,3 | sort | uniq -d | head -3)
    if [ -n "$duplicates" ]; then
        echo "FAILED: rows committed twice after kill $kills: $duplicates"
        exit 1
    fi
done

start_run 2
wait "$pid" || { echo "the last run failed; see $WORKDIR/stderr"; exit 1; }
echo "$kills kills in $(($(date +%s) - started)) s"

# The independent count: tokens are runs of ASCII letters, digits and `_`, lowercased,
# in 5 s tumbling windows of the line's timestamp.
awk -F'\t' '
    NF >= 2 && $1 ~ /^[0-9]+$/ {
        start = $1 - $1 % 5000
        text = $0
        sub(/^[^\t]*\t/, "", text)
        gsub(/[^A-Za-z0-9_]+/, " ", text)
        n = split(tolower(text), words, " ")
        for (i = 1; i <= n; i++) if (words[i] != "") count[start "," start + 5000 "," words[i]]++
    }
    END { for (key in count) print key "," count[key] }
' "$input" | sort >"$WORKDIR/expected.csv"
committed | sort >"$WORKDIR/got.csv"
if cmp -s "$WORKDIR/expected.csv" "$WORKDIR/got.csv"; then
    echo "OK: $(wc -l <"$WORKDIR/got.csv") window counts, each committed exactly once"
    rm -rf "$WORKDIR"
else
    echo "FAILED: output differs from the independent count (first differences below); kept $WORKDIR"
    diff "$WORKDIR/expected.csv" "$WORKDIR/got.csv" | head -10
    exit 1
fi
