#!/usr/bin/env bash
# The pipeline benchmark's ratio (pipeline ÷ slowest part alone, issue 9) over several runs.
#
#   ./scripts/bench-ratio.sh        # 5 runs
#   ./scripts/bench-ratio.sh 10     # 10 runs
#
# Each run is one unchanged `cargo bench -p idbridge-e2e --bench pipeline`: a fresh stack,
# the pipeline, then each part alone. Part 3 (under ORCID's limit) does not enter the ratio,
# so it is shortened to 24 researchers unless BENCH_LIMITED_EVENTS is set; every other
# BENCH_* and TEST_* variable is passed on. The host's speed drifts between runs and within
# one (docs/benchmarks.md), so one run's ratio is one sample: this prints every run's figures
# and then their mean, median, lowest, highest and standard deviation, and how many reached
# the target (≥ 0.5). Beside them, the benchmark's "host check" (a diagnostic, not the
# target): the ratio had the writer's statements cost PostgreSQL the same CPU in the
# pipeline's window as alone.
# Each run's whole output is kept in target/test-artifacts/e2e/bench-ratio/run-<n>.log.
# Needs what the benchmark needs: PostgreSQL, RabbitMQ with the consistent-hash exchange
# plugin (enabled here when rabbitmq-plugins is on this machine), and nothing else busy.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-5}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
  echo "bench-ratio.sh: the number of runs must be a positive integer, not '$runs'" >&2
  exit 2
fi
if command -v rabbitmq-plugins >/dev/null 2>&1; then
  rabbitmq-plugins enable --quiet rabbitmq_consistent_hash_exchange >/dev/null 2>&1 ||
    echo "bench-ratio.sh: warning: could not enable rabbitmq_consistent_hash_exchange here; the broker at TEST_AMQP_URL needs it" >&2
fi
export BENCH_LIMITED_EVENTS="${BENCH_LIMITED_EVENTS:-24}"
logs=target/test-artifacts/e2e/bench-ratio
mkdir -p "$logs"
rm -f "$logs"/run-*.log
summary="$logs/ratios.tsv"
printf 'run\tended (UTC)\tpipeline events/s\tslowest part\tcapacity/s\tratio\tCPU ms per event\tratio at equal PostgreSQL cost\n' >"$summary"

fail() { # run log what
  echo "bench-ratio.sh: run $1 $3; its output is in $2" >&2
  exit 1
}
number() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

for n in $(seq 1 "$runs"); do
  log="$logs/run-$n.log"
  if ! cargo bench -q -p idbridge-e2e --bench pipeline >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    fail "$n" "$log" "failed"
  fi
  # "pipeline / slowest part (PostgreSQL, 675/s): 395 / 675 = 0.59 (target >= 0.5)"
  line=$(grep -m1 '^pipeline / slowest part' "$log") || fail "$n" "$log" "printed no ratio"
  fields=$(sed -nE 's/^pipeline \/ slowest part \(([^,]+), [^)]*\): ([0-9.]+) \/ ([0-9.]+) = ([0-9.]+) .*/\1\t\2\t\3\t\4/p' <<<"$line")
  IFS=$'\t' read -r slowest events capacity ratio <<<"$fields"
  number "${events:-}" && number "${capacity:-}" && number "${ratio:-}" ||
    fail "$n" "$log" "printed a ratio line this script cannot read: $line"
  # "  CPU from first publish to last put code: 2.18 s in all = 4.36 ms per event, …" (the
  # pipeline's comes first; part 3's rounds print the same line later)
  cpu=$(grep -m1 'CPU from first publish' "$log" | sed -nE 's/.*= ([0-9.]+) ms per event.*/\1/p') || true
  number "${cpu:-}" || fail "$n" "$log" "printed no CPU per event"
  # "  host check (diagnostic, not the target): … at equal cost the ratio would be 0.62"
  # (printed when PostgreSQL is the slowest part)
  equal=$(grep -m1 'host check' "$log" | sed -nE 's/.*at equal cost the ratio would be ([0-9.]+).*/\1/p') || true
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$(date -u +%H:%M:%S)" "$events" "$slowest" \
    "$capacity" "$ratio" "$cpu" "${equal:--}" >>"$summary"
  printf 'run %d/%d: pipeline %s events/s, %s alone %s/s, ratio %s, %s ms CPU per event, ratio at equal cost %s\n' \
    "$n" "$runs" "$events" "$slowest" "$capacity" "$ratio" "$cpu" "${equal:--}"
done

echo
column -t -s $'\t' "$summary"
# summarise COLUMN LABEL [TARGET]: mean, median, lowest, highest and standard deviation of the
# numbers in the table's COLUMN (other cells skipped), and how many reached TARGET if given.
summarise() {
  tail -n +2 "$summary" | cut -f"$1" | awk '/^[0-9.]+$/' | sort -n |
    awk -v label="$2" -v target="${3:-}" '
      { r[NR] = $1; sum += $1; sq += $1 * $1; if (target != "" && $1 >= target) met++ }
      END {
        if (!NR) exit
        median = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
        var = (NR > 1) ? (sq - sum * sum / NR) / (NR - 1) : 0
        printf "%s over %d runs: mean %.2f, median %.2f, lowest %.2f, highest %.2f, standard deviation %.2f",
          label, NR, sum / NR, median, r[1], r[NR], sqrt(var > 0 ? var : 0)
        if (target != "") printf "; %d of %d >= %s (as printed, two decimals)", met + 0, NR, target
        printf "\n"
      }'
}
echo
summarise 6 "ratio" 0.5
summarise 8 "diagnostic, not the target: the ratio at equal PostgreSQL cost (host check)"
echo "each run's output: $logs/run-<n>.log; the table: $summary"
