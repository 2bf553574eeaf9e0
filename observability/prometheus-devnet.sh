#!/usr/bin/env bash
# A real Prometheus (Debian's `prometheus` package) scrapes a real devnet with
# observability/prometheus/devnet-scrape.yml and the alert rules, while
# transactions commit; then check_live.py asks its HTTP API whether every
# target is up without scrape errors, every member commits, every rule
# evaluates, the metrics the dashboards need are there, and every fiscus_*
# name scraped is one metric-names.txt lists.
#
# The devnet runs in one process (`fiscus devnet --demo --base-port 0`),
# publishing on a nats-server this script starts, and writes its targets file
# (<data>/prometheus-targets.json); the scrape interval is shortened to 2 s for
# the test, nothing else in the config changes.
#
# `make test` calls it (it uses target/debug/fiscus).
#   FISCUS_BIN   the fiscus binary (default target/debug/fiscus)
#   LOAD_SECS    how long transactions are submitted (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."

FISCUS_BIN="${FISCUS_BIN:-target/debug/fiscus}"
LOAD_SECS="${LOAD_SECS:-30}"
for tool in prometheus python3 curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "prometheus-devnet: $tool is not installed; run 'make deps'" >&2; exit 1; }
done
NATS="$(command -v nats-server || echo /usr/sbin/nats-server)"
[ -x "$NATS" ] || { echo "prometheus-devnet: nats-server is not installed; run 'make deps'" >&2; exit 1; }
[ -x "$FISCUS_BIN" ] || { echo "prometheus-devnet: $FISCUS_BIN is missing; build it with 'cargo build -p fiscus'" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_for SECONDS PID COMMAND…: runs COMMAND until it succeeds, while PID lives.
wait_for() {
  local secs="$1" pid="$2"; shift 2
  for _ in $(seq $((secs * 2))); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.5
  done
  return 1
}

# A nats-server, retried on another port if the one picked was taken meanwhile.
# Its JetStream limit is set: by default it is a share of the free disk, and the
# five members' streams (1 GiB each at most; this test writes a few MiB) would
# not fit on a nearly full build machine.
cat >"$work/nats.conf" <<CONF
jetstream {
  store_dir: "$work/nats"
  max_file_store: 16GB
  max_memory_store: 256MB
}
CONF
for _ in 1 2 3 4 5; do
  nats_port="$(free_port)"
  "$NATS" -a 127.0.0.1 -p "$nats_port" -c "$work/nats.conf" >"$work/nats.log" 2>&1 &
  nats_pid=$!
  if wait_for 10 "$nats_pid" bash -c "exec 3<>/dev/tcp/127.0.0.1/$nats_port"; then break; fi
  kill "$nats_pid" 2>/dev/null || true
  nats_pid=""
done
[ -n "${nats_pid:-}" ] || { echo "prometheus-devnet: nats-server did not start" >&2; cat "$work/nats.log" >&2; exit 1; }
pids+=("$nats_pid")

echo "prometheus-devnet: starting a devnet (--demo) in $work, events on nats://127.0.0.1:$nats_port"
"$FISCUS_BIN" devnet --base-port 0 --demo --nats-url "nats://127.0.0.1:$nats_port" \
  --data-dir "$work/devnet" >"$work/out" 2>"$work/err" &
devnet_pid=$!
pids+=("$devnet_pid")
if ! wait_for 240 "$devnet_pid" grep -q "Serving until" "$work/out"; then
  echo "prometheus-devnet: the devnet did not come up" >&2; tail -20 "$work/err" >&2; exit 1
fi
targets="$work/devnet/prometheus-targets.json"
[ -s "$targets" ] || { echo "prometheus-devnet: the devnet wrote no $targets" >&2; exit 1; }

# The repository's scrape config and rules, as they are, with a 2 s interval.
mkdir -p "$work/prom/targets" "$work/prom/rules"
sed -e 's/^  scrape_interval: .*/  scrape_interval: 2s/' -e 's/^  scrape_timeout: .*/  scrape_timeout: 2s/' \
  -e 's/^  evaluation_interval: .*/  evaluation_interval: 2s/' \
  observability/prometheus/devnet-scrape.yml >"$work/prom/prometheus.yml"
cp observability/prometheus/rules/*.yml "$work/prom/rules/"
cp "$targets" "$work/prom/targets/devnet.json"

for _ in 1 2 3 4 5; do
  prom_port="$(free_port)"
  prometheus --config.file="$work/prom/prometheus.yml" --storage.tsdb.path="$work/prom/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
  prom_pid=$!
  if wait_for 30 "$prom_pid" curl -sf "http://127.0.0.1:$prom_port/-/ready"; then break; fi
  kill "$prom_pid" 2>/dev/null || true
  prom_pid=""
done
[ -n "${prom_pid:-}" ] || { echo "prometheus-devnet: prometheus did not start" >&2; tail -20 "$work/prometheus.log" >&2; exit 1; }
pids+=("$prom_pid")
echo "prometheus-devnet: $(prometheus --version 2>&1 | head -1) on 127.0.0.1:$prom_port"

# Load: Hebei allocates 1 fen at a time to Shijiazhuang from the program the
# demo funded, waiting for each commit, for LOAD_SECS seconds.
read -r api key < <(awk '$1 == "130000" && $4 ~ /submit/ { print $2, $3; exit }' "$work/devnet/api-keys.txt")
ok=0
end=$((SECONDS + LOAD_SECS))
i=0
while [ "$SECONDS" -lt "$end" ]; do
  i=$((i + 1))
  if "$FISCUS_BIN" submit --api "$api" --key "$key" allocate --org 130000 --program agri-2026 \
      --to 130100 --amount-fen 1 --document "LOAD-$i" >/dev/null 2>>"$work/load.err"; then
    ok=$((ok + 1))
  fi
  sleep 0.2
done
echo "prometheus-devnet: $ok of $i transactions committed in ${LOAD_SECS} s"
[ "$ok" -gt 0 ] || { echo "prometheus-devnet: no transaction committed" >&2; tail -5 "$work/load.err" >&2; exit 1; }

python3 observability/check_live.py --prometheus "http://127.0.0.1:$prom_port" \
  --targets "$targets" --names observability/metric-names.txt
