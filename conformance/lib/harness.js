'use strict';
// Shared plumbing for the conformance suite: starting/stopping the emulator,
// bounded waits, the emulator-only REST endpoints, and SDK client factories.
// Every wait in here is bounded: nothing may hang the suite.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const https = require('node:https');
const readline = require('node:readline');
const { createRequire } = require('node:module');
const { before, after } = require('node:test');

const { policyToken, parseConnectionString } = require('./sas');

const CONFORMANCE_DIR = path.resolve(__dirname, '..');
const READY_TIMEOUT_MS = 30000;
const STOP_TIMEOUT_MS = 10000;

// ---------------------------------------------------------------- waiting

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Resolves/rejects like `promise`, or rejects after `ms` with `label`.
// A rejection's message is prefixed with `label` (once) and, for SDK HTTP
// errors, suffixed with the status and body, so a failure says which step broke.
function withTimeout(promise, ms, label) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`timed out after ${ms} ms: ${label}`), { labelled: true })), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout])
    .catch((err) => {
      if (err && typeof err === 'object' && !err.labelled) {
        let msg = `${label}: ${err.message}`;
        if (err.response && err.responseBody !== undefined) msg += ` [HTTP ${err.response.statusCode}: ${String(err.responseBody).slice(0, 300)}]`;
        try { err.message = msg; err.labelled = true; } catch { /* frozen */ }
      }
      throw err;
    })
    .finally(() => clearTimeout(timer));
}

// Polls `fn` (sync or async) until it returns a truthy value; returns it.
async function waitFor(fn, { timeout = 10000, interval = 100, label = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      const value = await withTimeout(fn(), Math.max(1000, timeout), `${label} (poll)`);
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeout} ms waiting for ${label}${why}`);
    }
    await sleep(interval);
  }
}

// Waits for one emission of `event` on `emitter` that satisfies `filter`.
function waitForEvent(emitter, event, { timeout = 10000, filter = () => true, label } = {}) {
  let handler;
  const p = new Promise((resolve) => {
    handler = (...args) => {
      if (filter(...args)) resolve(args.length <= 1 ? args[0] : args);
    };
    emitter.on(event, handler);
  });
  return withTimeout(p, timeout, label || `event '${event}'`).finally(() => emitter.removeListener(event, handler));
}

// ---------------------------------------------------------------- emulator process

function emulatorPath() {
  const p = process.env.IOTHUB_EMULATOR;
  // Relative paths are taken relative to conformance/.
  return p ? path.resolve(CONFORMANCE_DIR, p) : path.resolve(CONFORMANCE_DIR, '..', 'build', 'bin', 'iothub-emulator');
}

const liveChildren = new Set();
process.on('exit', () => {
  for (const child of liveChildren) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

function validateReady(info) {
  const problems = [];
  if (info.ready !== true) problems.push('ready !== true');
  if (typeof info.host_name !== 'string' || !info.host_name) problems.push('host_name missing');
  if (!Number.isInteger(info.mqtt_port) || info.mqtt_port <= 0) problems.push(`mqtt_port not a positive integer (${info.mqtt_port})`);
  if (info.https_port !== 443) problems.push(`https_port must be 443 (the service SDK only uses 443), got ${info.https_port}`);
  if (typeof info.ca_file !== 'string' || !path.isAbsolute(info.ca_file)) problems.push('ca_file must be an absolute path');
  else if (!fs.existsSync(info.ca_file)) problems.push(`ca_file ${info.ca_file} does not exist`);
  const cs = parseConnectionString(info.service_connection_string || '');
  if (!cs.HostName || !cs.SharedAccessKeyName || !cs.SharedAccessKey) problems.push('service_connection_string lacks HostName/SharedAccessKeyName/SharedAccessKey');
  return problems;
}

/**
 * Starts `iothub-emulator --state-dir DIR --host-name localhost --mqtt-port 0 --https-port 443`
 * and resolves when it prints its ready JSON line.
 *
 * options:
 *   stateDir     use this state dir (default: fresh temp dir)
 *   tlsDir       copy this folder to <state-dir>/tls before starting
 *                (default: $IOTHUB_CONFORMANCE_TLS_DIR, prepared by run.js); null = none
 *   checkCa      require that the emulator's ca_file equals $NODE_EXTRA_CA_CERTS (default true)
 *   keepStateDir do not delete the state dir on stop (also: IOTHUB_CONFORMANCE_KEEP=1)
 */
async function startEmulator(name, options = {}) {
  const bin = emulatorPath();
  if (!fs.existsSync(bin)) {
    throw new Error(`iothub-emulator binary not found at ${bin} (build it, or set IOTHUB_EMULATOR)`);
  }
  const stateDir = options.stateDir || fs.mkdtempSync(path.join(os.tmpdir(), `iothub-conformance-${name}-`));
  fs.mkdirSync(stateDir, { recursive: true });
  const tlsDir = options.tlsDir !== undefined ? options.tlsDir : process.env.IOTHUB_CONFORMANCE_TLS_DIR;
  if (tlsDir) fs.cpSync(tlsDir, path.join(stateDir, 'tls'), { recursive: true });

  // One log per file name, overwritten by the next run: no pile-up, and still
  // there after a failed run. IOTHUB_CONFORMANCE_LOG_DIR overrides the folder.
  const logDir = process.env.IOTHUB_CONFORMANCE_LOG_DIR || path.join(os.tmpdir(), 'iothub-conformance-logs');
  fs.mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `${name}.log`);
  const logStream = fs.createWriteStream(logFile);
  let tail = '';
  const remember = (prefix, text) => {
    logStream.write(prefix + text + '\n');
    tail = (tail + prefix + text + '\n').slice(-8000);
  };

  const args = ['--state-dir', stateDir, '--host-name', 'localhost', '--mqtt-port', '0', '--https-port', '443', ...(options.args || [])];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      liveChildren.delete(child);
      resolve({ code, signal });
    });
  });
  child.on('error', (err) => remember('[spawn error] ', err.message));
  readline.createInterface({ input: child.stderr }).on('line', (l) => remember('[stderr] ', l));

  const ready = new Promise((resolve, reject) => {
    let done = false;
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      remember('[stdout] ', line);
      if (done) return;
      let obj;
      try { obj = JSON.parse(line); } catch { return; }
      if (obj && obj.ready === true) {
        done = true;
        resolve(obj);
      }
    });
    exited.then(({ code, signal }) => {
      if (!done) reject(new Error(`emulator exited before ready (code ${code}, signal ${signal})`));
    });
    child.on('error', (err) => { if (!done) reject(err); });
  });

  const emu = {
    name, stateDir, logFile, child, exited,
    logTail: () => tail,
    async stop({ keepStateDir = options.keepStateDir } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const res = await Promise.race([exited, sleep(STOP_TIMEOUT_MS).then(() => null)]);
        if (!res) {
          remember('[harness] ', `no exit ${STOP_TIMEOUT_MS} ms after SIGTERM: SIGKILL`);
          child.kill('SIGKILL');
          await Promise.race([exited, sleep(5000)]);
        }
      }
      await new Promise((resolve) => logStream.end(resolve));
      if (!keepStateDir && !process.env.IOTHUB_CONFORMANCE_KEEP) {
        fs.rmSync(stateDir, { recursive: true, force: true });
      }
    },
  };

  let info;
  try {
    info = await withTimeout(ready, READY_TIMEOUT_MS, 'emulator ready line on stdout');
    const problems = validateReady(info);
    if (problems.length) throw new Error(`bad ready line ${JSON.stringify(info)}: ${problems.join('; ')}`);
    if (options.checkCa !== false) checkCaTrusted(info, stateDir);
  } catch (err) {
    await emu.stop({ keepStateDir: true });
    err.message = `${err.message}\n--- emulator output (full log: ${logFile}, state dir kept: ${stateDir}) ---\n${tail}`;
    throw err;
  }

  const svc = parseConnectionString(info.service_connection_string);
  Object.assign(emu, {
    info,
    hostName: info.host_name,
    mqttPort: info.mqtt_port,
    httpsPort: info.https_port,
    serviceConnectionString: info.service_connection_string,
    policy: { hostName: svc.HostName, keyName: svc.SharedAccessKeyName, key: svc.SharedAccessKey },
  });
  Object.assign(emu, emulatorApi(emu));
  return emu;
}

// The SDKs trust the emulator only through NODE_EXTRA_CA_CERTS, which Node reads
// at process start (see README "The CA trick").
function checkCaTrusted(info, stateDir) {
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (!extra) {
    throw new Error('NODE_EXTRA_CA_CERTS is not set in this test process: run the suite with `npm test` (node run.js), see README.md');
  }
  const want = fs.readFileSync(extra, 'utf8').trim();
  const got = fs.readFileSync(info.ca_file, 'utf8').trim();
  if (want !== got) {
    throw new Error(`emulator CA ${info.ca_file} differs from NODE_EXTRA_CA_CERTS ${extra}: the emulator must reuse the TLS material found in ${path.join(stateDir, 'tls')} instead of generating a new CA`);
  }
}

// ---------------------------------------------------------------- raw HTTPS

function httpsRequest({ host, port = 443, method, path: reqPath, headers = {}, body, timeoutMs = 15000 }) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (data !== undefined) {
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json; charset=utf-8';
      h['Content-Length'] = Buffer.byteLength(data);
    }
    const req = https.request({ host, port, method, path: reqPath, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`HTTPS ${method} ${reqPath} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

function emulatorApi(emu) {
  const serviceToken = () => policyToken(emu.policy.hostName, emu.policy.keyName, emu.policy.key);
  const rest = (method, reqPath, body, headers = {}) => httpsRequest({
    host: emu.hostName,
    port: emu.httpsPort,
    method,
    path: reqPath,
    body,
    headers: { Authorization: serviceToken(), ...headers },
  });
  const expectStatus = (res, ok, what) => {
    const oks = Array.isArray(ok) ? ok : [ok];
    if (!oks.includes(res.status)) {
      throw new Error(`${what}: expected HTTP ${oks.join('/')}, got ${res.status}: ${res.text.slice(0, 500)}`);
    }
    return res;
  };
  return {
    serviceToken,
    rest,
    deviceConnectionString(deviceId, key) {
      return `HostName=${emu.hostName};DeviceId=${deviceId};SharedAccessKey=${key};GatewayHostName=${emu.hostName}:${emu.mqttPort}`;
    },
    async readMessages(deviceId, since = 0) {
      const res = expectStatus(
        await rest('GET', `/emulator/messages?deviceId=${encodeURIComponent(deviceId)}&since=${since}`),
        200, 'GET /emulator/messages');
      if (!res.json || !Array.isArray(res.json.messages)) throw new Error(`GET /emulator/messages: no messages array: ${res.text.slice(0, 300)}`);
      return res.json;
    },
    // Resolves with the first message for deviceId (seq > since) matching `match`.
    async waitForMessage(deviceId, match, { since = 0, timeout = 10000, label } = {}) {
      return waitFor(async () => {
        const { messages } = await this.readMessages(deviceId, since);
        return messages.find(match);
      }, { timeout, interval: 200, label: label || `telemetry from ${deviceId}` });
    },
    async sendC2D(deviceId, message) {
      return rest('POST', `/emulator/devices/${encodeURIComponent(deviceId)}/messages`, message);
    },
    async advanceClock(seconds) {
      return expectStatus(await rest('POST', '/emulator/clock/advance', { seconds }), 200, 'POST /emulator/clock/advance');
    },
    async kick(deviceId) {
      return expectStatus(await rest('POST', '/emulator/faults/kick', { deviceId }), [200, 202, 204], 'POST /emulator/faults/kick');
    },
    expectStatus,
  };
}

// ---------------------------------------------------------------- SDK helpers

const deviceSdk = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const iothub = require('azure-iothub');

// A retry policy that never retries: makes the device client report a
// server-side close as a 'disconnect' event at once (SDK-NOTES §2.8).
const noRetryPolicy = { shouldRetry: () => false, nextRetryTimeout: () => -1 };

// An Mqtt transport constructor whose MQTT.js connections are recorded:
// every CONNECT's ClientId/username/password/clean flag, whether it got a
// CONNACK, and which topic filters were SUBSCRIBEd on it. Behaviour is the
// stock SDK's: it only wraps MQTT.js's connect() (MqttBase takes the MQTT.js
// module as a constructor argument).
function instrumentedMqtt() {
  const sdkRequire = createRequire(require.resolve('azure-iot-device-mqtt'));
  const { MqttBase } = sdkRequire('azure-iot-mqtt-base');
  const mqttjs = createRequire(sdkRequire.resolve('azure-iot-mqtt-base'))('mqtt');
  const connections = [];
  const provider = {
    connect(uri, opts) {
      const entry = {
        index: connections.length, uri, clientId: opts.clientId, username: opts.username,
        password: opts.password, clean: opts.clean, keepalive: opts.keepalive,
        connected: false, closed: false, subscriptions: [],
      };
      connections.push(entry);
      const c = mqttjs.connect(uri, opts);
      c.on('connect', () => { entry.connected = true; });
      c.on('close', () => { entry.closed = true; });
      const subscribe = c.subscribe.bind(c);
      c.subscribe = (topic, ...rest) => {
        entry.subscriptions.push(topic);
        return subscribe(topic, ...rest);
      };
      return c;
    },
  };
  function Transport(authenticationProvider) {
    return new Mqtt(authenticationProvider, new MqttBase(provider));
  }
  return { Transport, connections };
}

function tokenExpiry(token) {
  const m = /[?&\s]se=(\d+)/.exec(token || '');
  return m ? Number(m[1]) : NaN;
}

// Per-file context: starts one emulator for the file (before), closes all
// clients and stops it (after). `setup(ctx)` runs inside the same before hook,
// after the emulator is ready: node:test (Node 20) starts top-level hooks as
// soon as they are registered, so a second top-level before() would race.
// `options.args`: extra emulator flags (e.g. ['--tier', 'free']).
function useEmulator(name, setup, options = {}) {
  const ctx = { clients: [] };
  before(async () => {
    ctx.emu = await startEmulator(name, { args: options.args });
    ctx.registry = iothub.Registry.fromConnectionString(ctx.emu.serviceConnectionString);
    ctx.service = iothub.Client.fromConnectionString(ctx.emu.serviceConnectionString);
    if (setup) await setup(ctx);
  }, { timeout: READY_TIMEOUT_MS + 60000 });
  after(async () => {
    for (const c of ctx.clients.splice(0)) {
      try { await withTimeout(c.close(), 5000, 'device client close'); } catch { /* best effort */ }
    }
    if (ctx.emu) await ctx.emu.stop();
  }, { timeout: 30000 });

  // Creates a device identity through the SDK; returns the Device (with keys).
  ctx.createDevice = async (deviceId, extra = {}) => {
    const { responseBody } = await withTimeout(ctx.registry.create({ deviceId, ...extra }), 15000, `registry.create(${deviceId})`);
    return responseBody;
  };
  // Builds (does not open) an MQTT device client from a connection string.
  ctx.deviceClient = (connectionString, Transport = Mqtt) => {
    const client = deviceSdk.Client.fromConnectionString(connectionString, Transport);
    ctx.clients.push(client);
    return client;
  };
  ctx.trackClient = (client) => { ctx.clients.push(client); return client; };
  // Builds and opens a client for a device created with createDevice.
  ctx.connectDevice = async (device, { Transport = Mqtt, retryPolicy } = {}) => {
    const client = ctx.deviceClient(ctx.emu.deviceConnectionString(device.deviceId, device.authentication.symmetricKey.primaryKey), Transport);
    if (retryPolicy) client.setRetryPolicy(retryPolicy);
    await withTimeout(client.open(), 20000, `device ${device.deviceId} open()`);
    return client;
  };
  ctx.closeClient = async (client) => {
    const i = ctx.clients.indexOf(client);
    if (i >= 0) ctx.clients.splice(i, 1);
    await withTimeout(client.close(), 10000, 'device client close');
  };
  return ctx;
}

// The SDK subscribes lazily and gives no completion callback for
// onDeviceMethod / the 'message' listener; wait for the transport's own
// "SUBACK received" flag (azure-iot-device-mqtt/dist/mqtt.js _setupSubscription).
async function waitForSubscribed(client, which /* 'method' | 'message' */, timeout = 10000) {
  await waitFor(() => {
    const topics = client._transport && client._transport._topics;
    return topics && topics[which] && topics[which].subscribed;
  }, { timeout, interval: 50, label: `SUBACK for the ${which} subscription` });
}

// Registers everything that needs a subscription (C2D, a `ping` method answering
// {pong: payload}, desired-property pushes) and waits until the SDK holds all of them.
// Returns the arrays that collect C2D messages and desired patches, and the twin.
async function subscribeEverything(client, timeout = 15000) {
  const c2d = [];
  client.on('message', (m) => c2d.push(m));
  client.onDeviceMethod('ping', (req, res) => res.send(200, { pong: req.payload }));
  const twin = await withTimeout(client.getTwin(), timeout, 'getTwin');
  const desired = [];
  twin.on('properties.desired', (p) => desired.push(JSON.parse(JSON.stringify(p))));
  await withTimeout(client.getTwin(), timeout, 'getTwin (barrier for the desired SUBSCRIBE)');
  await waitForSubscribed(client, 'message');
  await waitForSubscribed(client, 'method');
  return { c2d, desired, twin };
}

// twin.properties.reported.update is callback-only.
function updateReported(twin, patch) {
  return withTimeout(new Promise((resolve, reject) => {
    twin.properties.reported.update(patch, (err) => (err ? reject(err) : resolve()));
  }), 15000, 'twin reported update');
}

module.exports = {
  sleep,
  withTimeout,
  waitFor,
  waitForEvent,
  emulatorPath,
  startEmulator,
  httpsRequest,
  useEmulator,
  instrumentedMqtt,
  noRetryPolicy,
  tokenExpiry,
  waitForSubscribed,
  subscribeEverything,
  updateReported,
  deviceSdk,
  iothub,
  Mqtt,
};
