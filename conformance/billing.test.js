'use strict';
// What the hub bills (shared/reference/azure-iothub.md §5), for operations made with the
// official SDKs on a Free hub (0.5 KB chunks), read back from GET /emulator/stats. Each
// expected count is computed from the pricing page's rule, not from the emulator.
const test = require('node:test');
const assert = require('node:assert/strict');

const { useEmulator, withTimeout, deviceSdk } = require('./lib/harness');

const { Message } = deviceSdk;
const T = 15000;
const CHUNK = 512;

let client;

const ctx = useEmulator('billing', async () => {
  const dev = await ctx.createDevice('bill-1');
  await ctx.createDevice('bill-offline');
  client = await ctx.connectDevice(dev);
}, { args: ['--tier', 'free'] });

// ceil(bytes / 0.5 KB), at least one message.
const chunks = (bytes) => Math.max(1, Math.ceil(bytes / CHUNK));
const bytes = (text) => Buffer.byteLength(text, 'utf8');

async function quota() {
  const res = await ctx.emu.rest('GET', '/emulator/stats');
  assert.equal(res.status, 200, res.text);
  return res.json.quota;
}

// Runs `op` and returns how many messages it added to the day's count.
async function billedFor(op) {
  const before = (await quota()).used;
  await op();
  return (await quota()).used - before;
}

test('telemetry is billed by body, system property values and application properties', { timeout: 30000 }, async () => {
  const system = { messageId: 'bill-mid-1', contentType: 'application/json', contentEncoding: 'utf-8' };
  const app = { room: 'kitchen-01' };
  const counted = Object.values(system).reduce((n, v) => n + bytes(v), 0) +
    Object.entries(app).reduce((n, [k, v]) => n + bytes(k) + bytes(v), 0);
  // Exactly one chunk by Azure's measure; counting the names `$.mid`, `$.ct`, `$.ce` as well
  // would make it two.
  const body = 'x'.repeat(CHUNK - counted);
  const billed = await billedFor(async () => {
    const msg = new Message(body);
    Object.assign(msg, system);
    for (const [k, v] of Object.entries(app)) msg.properties.add(k, v);
    await withTimeout(client.sendEvent(msg), T, 'sendEvent');
  });
  assert.equal(billed, chunks(bytes(body) + counted));
  assert.equal(billed, 1);
  const bigger = await billedFor(() => withTimeout(client.sendEvent(new Message('y'.repeat(CHUNK + 1))), T, 'sendEvent'));
  assert.equal(bigger, 2);
});

test('service twin reads and updates are billed by their size, tags-only updates too', { timeout: 30000 }, async () => {
  const patch = { tags: { note: 'n'.repeat(1800) } };
  const { responseBody: before } = await withTimeout(ctx.registry.getTwin('bill-1'), T, 'getTwin');
  const update = await billedFor(() => withTimeout(ctx.registry.updateTwin('bill-1', patch, before.etag), T, 'updateTwin'));
  assert.equal(update, chunks(bytes(JSON.stringify(patch))));
  assert.equal(update, 4);

  let twin;
  const read = await billedFor(async () => {
    twin = (await withTimeout(ctx.registry.getTwin('bill-1'), T, 'getTwin')).responseBody;
  });
  // The twin's tags and properties as read, without the hub's $metadata.
  const strip = (section) => Object.fromEntries(Object.entries(section).filter(([k]) => k !== '$metadata'));
  const doc = { tags: twin.tags, properties: { desired: strip(twin.properties.desired), reported: strip(twin.properties.reported) } };
  assert.equal(read, chunks(bytes(JSON.stringify(doc))));
  assert.equal(read, 4);
});

test('a direct method to an offline device is billed request chunks plus one', { timeout: 30000 }, async () => {
  const payload = { text: 'p'.repeat(1000) };
  let error;
  const billed = await billedFor(async () => {
    try {
      await withTimeout(ctx.service.invokeDeviceMethod('bill-offline', { methodName: 'reboot', payload, responseTimeoutInSeconds: 5, connectTimeoutInSeconds: 0 }), T, 'invokeDeviceMethod');
    } catch (err) {
      error = err;
    }
  });
  assert.ok(error, 'the device is offline');
  assert.match(String(error.responseBody || error.message), /DeviceNotOnline|404103/);
  assert.equal(billed, chunks(bytes(JSON.stringify(payload))) + 1);
  assert.equal(billed, 3);
  assert.equal((await quota()).billed.methods, 3);
});
