#!/usr/bin/env bash
# The live demo on the embedded defaults. Until the connector exists, it starts iothub-emulator
# and two sample devices made of mosquitto clients (a thermostat that reports temperatures and
# a display that listens to the cloud; IoT Hub allows one connection per device) and shows the
# hub at work: telemetry arriving, a cloud-to-device message, a desired-property change pushed
# to the device, then the hub's counters. DEMO_SECONDS (default 20) sets how long the
# thermostat reports; Ctrl-C ends it early. Then openhab-sim serves the demo home, replaying the
# real sensor log of shared/data at 3600x, and `iothub-connector inspect` shows what the
# connector's openHAB client sees for half as long, including a command to all lights.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j"$(nproc)" >/dev/null

seconds=${DEMO_SECONDS:-20}
state=$(mktemp -d /tmp/iothub-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }

# sas RESOURCE KEY [POLICY]: an IoT Hub SAS token valid for an hour (shared/reference §2).
sas() {
  local sr se sig hexkey
  sr=$(printf '%s' "$1" | sed 's|/|%2F|g')
  se=$(( $(date +%s) + 3600 ))
  hexkey=$(printf '%s' "$2" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  sig=$(printf '%s\n%s' "$sr" "$se" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64)
  sig=$(printf '%s' "$sig" | sed -e 's|+|%2B|g' -e 's|/|%2F|g' -e 's|=|%3D|g')
  printf 'SharedAccessSignature sr=%s&sig=%s&se=%s%s' "$sr" "$sig" "$se" "${3:+&skn=$3}"
}

say "Starting iothub-emulator (state in $state)"
build/bin/iothub-emulator --state-dir "$state" --mqtt-port 0 --https-port 0 > "$state/ready.json" &
pids+=($!)
for _ in $(seq 100); do [ -s "$state/ready.json" ] && break; sleep 0.1; done
cat "$state/ready.json"
https=$(json https_port < "$state/ready.json")
mqtt=$(json mqtt_port < "$state/ready.json")
ca="$state/tls/ca.pem"
owner_key=$(sed -n 's/.*SharedAccessKey=\([^"]*\)".*/\1/p' "$state/ready.json")
api() { # METHOD PATH [BODY]
  curl -sS --cacert "$ca" -X "$1" "https://localhost:$https$2" \
    -H "Authorization: $(sas localhost "$owner_key" iothubowner)" \
    -H 'Content-Type: application/json; charset=utf-8' ${3:+-d "$3"}
}

# device_args ID: mosquitto client options for device ID (registered on the fly).
device_args() {
  local key
  key=$(api PUT "/devices/$1?api-version=2021-04-12" "{\"deviceId\":\"$1\"}" | json primaryKey)
  echo "  registered device '$1'" >&2
  printf '%s\n' --cafile "$ca" -h localhost -p "$mqtt" -V mqttv311 -i "$1" \
    -u "localhost/$1/?api-version=2021-04-12&DeviceClientType=iothub-demo" -P "$(sas "localhost/devices/$1" "$key")"
}

say "Registering devices 'thermostat' and 'display' (PUT /devices/{id})"
mapfile -t thermostat < <(device_args thermostat)
mapfile -t display < <(device_args display)

say "The display listens for cloud-to-device messages and desired properties"
# mosquitto_sub itself is the background job (not a pipeline, whose $! would be sed's): a
# client that reconnects forever must be the one that gets killed at the end.
mosquitto_sub "${display[@]}" -c -q 1 -v -t 'devices/display/messages/devicebound/#' \
  -t '$iothub/twin/PATCH/properties/desired/#' > >(sed -u 's/^/  [display received] /') &
pids+=($!)
sleep 1

say "Watching telemetry arrive at the hub (GET /emulator/messages/stream)"
curl -sSN --cacert "$ca" "https://localhost:$https/emulator/messages/stream?deviceId=thermostat" \
  -H "Authorization: $(sas localhost "$owner_key" iothubowner)" 2>/dev/null \
  | node -e '
      // One line per stored message: sequence, device, body, application properties.
      require("readline").createInterface({ input: process.stdin }).on("line", (line) => {
        if (!line.startsWith("data: ")) return;
        const m = JSON.parse(line.slice(6));
        const props = Object.entries(m.properties).map(([k, v]) => `${k}=${v}`).join(" ");
        console.log(`  [hub stored] #${m.seq} from ${m.deviceId} at ${m.enqueuedTime}: ${m.body} ${props}`);
      });' &
pids+=($!)

say "The thermostat reports a temperature every second for $seconds s"
# One long-lived connection (mosquitto_pub -l sends each stdin line as a message).
exec 3> >(mosquitto_pub "${thermostat[@]}" -q 1 -l \
  -t 'devices/thermostat/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8&unit=celsius')
pids+=($!)

temp=20.0
for i in $(seq "$seconds"); do
  temp=$(awk -v t="$temp" -v r="$RANDOM" 'BEGIN { printf "%.1f", t + (r % 11 - 5) / 10 }')
  echo "{\"reading\":$i,\"temperature\":$temp}" >&3
  if [ "$i" = 3 ]; then
    say "Cloud sends a message to the display (POST /emulator/devices/display/messages)"
    api POST /emulator/devices/display/messages '{"body":"display: hello from the cloud","properties":{"priority":"low"}}' \
      | sed 's/^/  [cloud] sent /'; echo
  fi
  if [ "$i" = 5 ]; then
    say "Cloud sets the display's desired brightness (PATCH /twins/display)"
    api PATCH '/twins/display?api-version=2021-04-12' '{"properties":{"desired":{"brightness":80}}}' >/dev/null
  fi
  sleep 1
done

exec 3>&-
sleep 1
say "Hub counters (GET /emulator/stats)"
api GET /emulator/stats | node -e '
  let text = ""; process.stdin.on("data", (d) => (text += d)).on("end", () => {
    const stats = JSON.parse(text);
    console.log(`  tier ${stats.tier}: ${stats.quota.used} of ${stats.quota.dailyMessages} messages used today`);
    for (const [id, d] of Object.entries(stats.devices)) {
      console.log(`  ${id}: ${d.d2cMessages} sent, ${d.c2dDelivered} cloud messages and ${d.desiredPushes} desired changes received`);
    }
  });'

say "Starting openhab-sim: the demo home, replaying a real sensor log at 3600x (an hour a second)"
build/bin/openhab-sim --port 0 --home data/demo-home.json --trace data/ordonez-a.trace.jsonl \
  --speed 3600 --loop > "$state/sim.json" &
pids+=($!)
for _ in $(seq 100); do [ -s "$state/sim.json" ] && break; sleep 0.1; done
cat "$state/sim.json"
oh="http://127.0.0.1:$(json port < "$state/sim.json")"

say "What the connector sees (iothub-connector inspect): items, then changes for $((seconds / 2)) s"
# Sensor events as they come; the meters (hundreds of reports a second at this speed) summed up.
timeout -s TERM $((seconds / 2)) build/bin/iothub-connector inspect --openhab "$oh" 2>/dev/null | node -e '
  let items = 0, shown = 0, meters = 0, last = {};
  const meter = /(Temperature|Humidity|Power|Energy)s?$/;
  setInterval(() => {
    if (!meters) return;
    const show = ["House_Power", "House_Energy", "Living_Temperature", "Outdoor_Temperature"]
      .filter((n) => last[n]).map((n) => `${n}=${last[n]}`).join("  ");
    console.log(`  [meters] ${meters} readings, latest: ${show}`);
    meters = 0;
  }, 2000).unref();
  require("readline").createInterface({ input: process.stdin }).on("line", (line) => {
    const e = JSON.parse(line);
    if (!e.event) {
      items++;
      if (e.type !== "Group" && ++shown <= 5) console.log(`  [item] ${e.name} (${e.type}) = ${e.state}`);
      return;
    }
    if (e.event === "synced" || e.event === "connection") return;
    if (e.event === "changed" && meter.test(e.name)) { meters++; last[e.name] = e.state; return; }
    if (e.event === "changed") console.log(`  [changed] ${e.name}: ${e.oldState} -> ${e.state}`);
    else if (e.event === "command") console.log(`  [command] ${e.name} ${e.command}`);
  }).on("close", () => console.log(`  (${items} items listed)`));' &
inspect=$!
sleep $((seconds / 4))
say "A user switches all lights on (POST /rest/items/gLights, text/plain ON)"
curl -sS -X POST -H 'Content-Type: text/plain' -d ON "$oh/rest/items/gLights"
wait "$inspect" || true

say "Demo finished: $seconds readings sent and stored; the simulated home streamed its changes."
