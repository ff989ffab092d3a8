#!/usr/bin/env bash
# The live demo on the embedded defaults: iothub-emulator (a Free-tier hub), openhab-sim (the
# demo home replaying the real sensor log of shared/data and its meter series) and
# iothub-connector between them, with the Free tier's 8,000 messages a day scaled to a short
# window: the home runs at 1440x, so one simulated day passes in each 60-second window and
# the connector may spend one day's budget in it. The terminal shows what reaches the hub,
# the budget spent against the pace line, and what was merged; at the end (DEMO_SECONDS,
# default 60, or Ctrl-C) a summary. DEMO_SPEED changes the pace of the home.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j"$(nproc)" >/dev/null

seconds=${DEMO_SECONDS:-60}
speed=${DEMO_SPEED:-1440}
window=60
state=$(mktemp -d /tmp/iothub-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT
trap 'stop=1' INT TERM
stop=0

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
wait_ready() { for _ in $(seq 300); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "demo: $2 did not start" >&2; exit 1; }

say "Starting iothub-emulator: a Free-tier hub (8,000 messages a day in 512-byte chunks)"
build/bin/iothub-emulator --state-dir "$state/hub" --mqtt-port 0 --https-port 0 --tier free \
  > "$state/hub.json" 2> "$state/hub.log" &
pids+=($!)
wait_ready "$state/hub.json" iothub-emulator
https=$(json https_port < "$state/hub.json")
mqtt=$(json mqtt_port < "$state/hub.json")
connection_string=$(json service_connection_string < "$state/hub.json")
echo "  MQTT on localhost:$mqtt, HTTPS on localhost:$https"

say "Starting openhab-sim: the demo home, the real sensor log and its meters at ${speed}x"
build/bin/openhab-sim --port 0 --home data/demo-home.json --trace data/ordonez-a.trace.jsonl \
  --speed "$speed" --loop > "$state/sim.json" 2> "$state/sim.log" &
pids+=($!)
wait_ready "$state/sim.json" openhab-sim
oh="http://127.0.0.1:$(json port < "$state/sim.json")"
echo "  openHAB $(json openhab < "$state/sim.json") at $oh with $(json items < "$state/sim.json") items"

cat > "$state/connector.toml" <<TOML
[openhab]
url = "$oh"

[iothub]
connection_string = "$connection_string"
mqtt_endpoint = "localhost:$mqtt"
https_endpoint = "localhost:$https"
ca_file = "$state/hub/tls/ca.pem"

[quota]
tier = "free"
daily_messages = 8000     # one day's Free quota ...
window_seconds = $window  # ... in each ${window}-second window: one simulated day at ${speed}x

[store]
dir = "$state/store"

[metrics]
listen = "127.0.0.1:0"

[[item]]
match = "*_Power"
priority = "low"

[[item]]
match = "#Door"
priority = "high"
TOML
chmod 600 "$state/connector.toml"

say "Starting iothub-connector run --config connector.toml (its log: $state/connector.log)"
build/bin/iothub-connector run --config "$state/connector.toml" > "$state/connector.json" \
  2> "$state/connector.log" &
pids+=($!)
wait_ready "$state/connector.json" iothub-connector
metrics=$(json metrics < "$state/connector.json")
sed 's/^/  /' "$state/connector.log"

say "Live for $seconds s: what reaches the hub, and the budget against its pace line"
export DEMO_HTTPS=$https DEMO_CA="$state/hub/tls/ca.pem" DEMO_METRICS=$metrics
export DEMO_KEY=${connection_string##*SharedAccessKey=}
node scripts/demo-view.js "$seconds" &
view=$!
pids+=($view)
for _ in $(seq "$seconds"); do
  [ "$stop" = 1 ] && break
  kill -0 "$view" 2>/dev/null || break
  sleep 1
done
kill -INT "$view" 2>/dev/null || true
wait "$view" 2>/dev/null || true

say "Stopping the connector (SIGTERM: it sends what the budget allows, keeps the rest)"
kill -TERM "${pids[2]}" 2>/dev/null || true
wait "${pids[2]}" 2>/dev/null || true
tail -n 2 "$state/connector.log" | sed 's/^/  /'
