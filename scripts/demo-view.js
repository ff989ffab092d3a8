// The demo's live view (scripts/demo.sh): every 2 s one line of the connector's status (budget
// used against the pace line, what was sent and merged) and a line for what reached the hub
// since the last tick; on SIGINT or after ARGV[2] seconds a summary. Reads the connector's
// GET /status and the emulator's GET /emulator/messages and /emulator/stats.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const https = require("https");

const seconds = Number(process.argv[2] || 60);
const { DEMO_HTTPS: hubPort, DEMO_CA: caFile, DEMO_METRICS: metrics, DEMO_KEY: key } = process.env;
const ca = fs.readFileSync(caFile);

function sas() {
  const sr = encodeURIComponent("localhost");
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = crypto.createHmac("sha256", Buffer.from(key, "base64")).update(`${sr}\n${se}`).digest("base64");
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=iothubowner`;
}
function get(url, options) {
  return new Promise((resolve) => {
    const lib = url.startsWith("https") ? https : http;
    const req = lib.get(url, { timeout: 3000, ...options }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d)).on("end", () => {
        try { resolve(JSON.parse(body)); } catch { resolve(null); }
      });
    });
    req.on("error", () => resolve(null)).on("timeout", () => req.destroy());
  });
}
const hub = (path) => get(`https://localhost:${hubPort}${path}`, { ca, headers: { Authorization: sas() } });
const status = () => get(`http://${metrics}/status?items=all`);

const n = (x) => Number(x || 0).toLocaleString("en-US");
const pad = (s, w) => String(s).padStart(w);
let since = 0, changes = 0, firstStatus = null, last = null, lastStats = null;
const started = Date.now();

function describe(item) {
  const v = item.value;
  if (v === null) return item.state || "null";
  if (typeof v === "object") return JSON.stringify(v);
  return `${v}${item.unit ? " " + item.unit : ""}`;
}

async function tick() {
  const [s, m, stats] = await Promise.all([status(), hub(`/emulator/messages?since=${since}&limit=1000`), hub("/emulator/stats")]);
  if (stats) lastStats = stats;
  if (s) { last = s; firstStatus = firstStatus || s; }
  let shown = null, count = 0, kinds = {};
  if (m && m.messages) {
    for (const msg of m.messages) {
      count++;
      const body = JSON.parse(msg.body);
      const items = Object.entries(body.items || body.things || {});
      kinds[body.kind] = (kinds[body.kind] || 0) + 1;
      for (const [, item] of items) changes += 1 + (item.history ? item.history.length : 0);
      if (!shown || body.kind !== "changes") shown = { body, items };
    }
    since = m.next || since;
  }
  const t = Math.round((Date.now() - started) / 1000);
  if (s) {
    const b = s.budget, o = s.outbox;
    console.log(`  [${pad(t, 3)} s] budget ${pad(n(b.used), 5)} of ${n(b.daily_budget)} used, pace line ${pad(n(b.pace_allowed), 5)}` +
      ` | sent ${pad(n(s.telemetry.messages_sent), 5)} msgs | merged ${pad(n(o.merged), 6)} | waiting ${pad(n(o.pending_entries), 5)}` +
      ` | hub ${s.hub.session_state}, openHAB ${s.openhab.stream_up ? "up" : "down"}`);
  }
  if (shown) {
    const list = shown.items.slice(0, 4).map(([name, item]) => `${name}=${describe(item)}`).join("  ");
    const more = shown.items.length > 4 ? ` (+${shown.items.length - 4})` : "";
    console.log(`           hub got ${count} msgs (${Object.entries(kinds).map(([k, v]) => `${v} ${k}`).join(", ")}); e.g. #${shown.body.seq} ${shown.body.kind}: ${list}${more}`);
  }
}

function summary() {
  console.log("\n\x1b[1m== Summary\x1b[0m");
  if (!last) { console.log("  the connector's status did not answer"); return; }
  const b = last.budget, o = last.outbox, t = last.telemetry, sum = last.items_summary || {};
  const q = lastStats ? lastStats.quota : null;
  console.log(`  hub meter: ${q ? n(q.used) : "?"} messages billed (the connector's budget: ${n(b.daily_budget)} per ${b.window_seconds}-s window, never exceeded)`);
  console.log(`  connector: ${n(t.messages_sent)} messages carrying ${n(t.entries_sent)} states and changes; ${n(changes)} item updates seen at the hub`);
  console.log(`  merged when the budget could not carry every change: ${n(o.merged)} (latest states kept, with min/max/count)`);
  console.log(`  items replicated: ${n(sum.total)}, waiting for the budget now: ${n(sum.stale)}, staleness bound ${Number(b.staleness_bound_seconds || 0).toFixed(1)} s`);
  console.log(`  outbox: ${n(o.pending_entries)} entries wait for the next window (they survive a restart)`);
}

const timer = setInterval(tick, 2000);
const end = () => { clearInterval(timer); tick().then(summary).then(() => process.exit(0)); };
process.on("SIGINT", end);
setTimeout(end, seconds * 1000).unref();
tick();
