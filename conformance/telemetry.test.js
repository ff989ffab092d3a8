'use strict';
// Device-to-cloud telemetry with azure-iot-device + Mqtt, read back through
// GET /emulator/messages. SDK-NOTES.md §2.3 shows the exact topics.
const test = require('node:test');
const assert = require('node:assert/strict');

const { useEmulator, withTimeout, waitFor, deviceSdk } = require('./lib/harness');

const { Message } = deviceSdk;
const T = 15000;

let devA;
let devB;
let clientA;
let clientB;

const ctx = useEmulator('telemetry', async () => {
  devA = await ctx.createDevice('tele-a');
  devB = await ctx.createDevice('tele-b');
  clientA = await ctx.connectDevice(devA);
  clientB = await ctx.connectDevice(devB);
});

function assertIsoNear(value, what) {
  assert.equal(typeof value, 'string', `${what} is a string`);
  const t = Date.parse(value);
  assert.ok(!Number.isNaN(t), `${what} is an ISO date: ${value}`);
  assert.ok(Math.abs(t - Date.now()) < 5 * 60 * 1000, `${what} is close to now: ${value}`);
}

test('sendEvent with messageId, correlationId, contentType/Encoding and app properties', { timeout: 30000 }, async () => {
  const body = JSON.stringify({ temperature: 21.5, unit: 'C' });
  const msg = new Message(body);
  msg.messageId = 'mid-full-1';
  msg.correlationId = 'corr/1';
  msg.contentType = 'application/json';
  msg.contentEncoding = 'utf-8';
  msg.properties.add('alert', 'hot & humid');
  msg.properties.add('unit', 'C');
  msg.properties.add('with space', 'a=b/c?d');
  await withTimeout(clientA.sendEvent(msg), T, 'sendEvent');

  const m = await ctx.emu.waitForMessage('tele-a', (x) => x.systemProperties && x.systemProperties['message-id'] === 'mid-full-1');
  assert.equal(m.deviceId, 'tele-a');
  assert.equal(m.body, body);
  assert.ok(Number.isInteger(m.seq), 'seq is an integer');
  assertIsoNear(m.enqueuedTime, 'enqueuedTime');
  assert.deepEqual(m.properties, { alert: 'hot & humid', unit: 'C', 'with space': 'a=b/c?d' });
  const sp = m.systemProperties;
  assert.equal(sp['message-id'], 'mid-full-1');
  assert.equal(sp['correlation-id'], 'corr/1');
  assert.equal(sp['content-type'], 'application/json');
  assert.equal(sp['content-encoding'], 'utf-8');
  assert.equal(sp['iothub-connection-device-id'], 'tele-a');
  assertIsoNear(sp['iothub-enqueuedtime'], 'iothub-enqueuedtime');
  const auth = JSON.parse(sp['iothub-connection-auth-method']);
  assert.equal(auth.scope, 'device');
  assert.equal(auth.type, 'sas');
});

test('sendEvent without any property: topic ends with "/" and no system ids are invented', { timeout: 30000 }, async () => {
  const { next } = await ctx.emu.readMessages('tele-a', 0);
  await withTimeout(clientA.sendEvent(new Message('plain body')), T, 'sendEvent');
  const m = await ctx.emu.waitForMessage('tele-a', (x) => x.body === 'plain body', { since: next });
  assert.deepEqual(m.properties || {}, {});
  assert.equal(m.systemProperties['message-id'], undefined);
  assert.equal(m.systemProperties['content-type'], undefined);
  assert.equal(m.systemProperties['iothub-connection-device-id'], 'tele-a');
});

test('UTF-8 body and non-ASCII property values survive', { timeout: 30000 }, async () => {
  const msg = new Message('héllo wörld ✓ 温度');
  msg.messageId = 'mid-utf8';
  msg.properties.add('city', 'Zürich');
  await withTimeout(clientA.sendEvent(msg), T, 'sendEvent');
  const m = await ctx.emu.waitForMessage('tele-a', (x) => x.systemProperties['message-id'] === 'mid-utf8');
  assert.equal(m.body, 'héllo wörld ✓ 温度');
  assert.equal(m.properties.city, 'Zürich');
});

test('messages keep their order and seq increases; since/next page forward', { timeout: 30000 }, async () => {
  const { next: start } = await ctx.emu.readMessages('tele-a', 0);
  for (let i = 0; i < 5; i++) {
    const msg = new Message(`ordered-${i}`);
    msg.messageId = `ord-${i}`;
    await withTimeout(clientA.sendEvent(msg), T, `sendEvent ${i}`);
  }
  const page = await waitFor(async () => {
    const p = await ctx.emu.readMessages('tele-a', start);
    return p.messages.filter((x) => /^ordered-/.test(x.body)).length >= 5 ? p : null;
  }, { timeout: 10000, label: '5 ordered messages' });
  const ordered = page.messages.filter((x) => /^ordered-/.test(x.body));
  assert.deepEqual(ordered.map((x) => x.body), [0, 1, 2, 3, 4].map((i) => `ordered-${i}`));
  for (let i = 1; i < ordered.length; i++) assert.ok(ordered[i].seq > ordered[i - 1].seq, 'seq strictly increasing');
  assert.ok(page.messages.every((x) => x.seq > start), 'since is exclusive');
  assert.ok(page.next >= ordered[ordered.length - 1].seq, 'next >= last seq');
  const after = await ctx.emu.readMessages('tele-a', page.next);
  assert.ok(!after.messages.some((x) => /^ordered-/.test(x.body)), 'nothing old after next');
});

test('messages are attributed to their own device only', { timeout: 30000 }, async () => {
  const msg = new Message('from b');
  msg.messageId = 'mid-b-1';
  await withTimeout(clientB.sendEvent(msg), T, 'sendEvent b');
  const m = await ctx.emu.waitForMessage('tele-b', (x) => x.systemProperties['message-id'] === 'mid-b-1');
  assert.equal(m.systemProperties['iothub-connection-device-id'], 'tele-b');
  const a = await ctx.emu.readMessages('tele-a', 0);
  assert.ok(!a.messages.some((x) => x.systemProperties['message-id'] === 'mid-b-1'), 'deviceId filter');
});

test('connectionState: Connected while open, Disconnected after close', { timeout: 30000 }, async () => {
  const { responseBody: d } = await withTimeout(ctx.registry.get('tele-b'), T, 'get');
  assert.equal(String(d.connectionState).toLowerCase(), 'connected');
  await ctx.closeClient(clientB);
  await waitFor(async () => {
    const { responseBody: x } = await ctx.registry.get('tele-b');
    return String(x.connectionState).toLowerCase() === 'disconnected';
  }, { timeout: 10000, label: 'connectionState Disconnected' });
});

test('a 200 KB message is accepted intact', { timeout: 30000 }, async () => {
  const big = 'x'.repeat(200 * 1024);
  const msg = new Message(big);
  msg.messageId = 'mid-big';
  await withTimeout(clientA.sendEvent(msg), T, 'sendEvent big');
  const m = await ctx.emu.waitForMessage('tele-a', (x) => x.systemProperties['message-id'] === 'mid-big');
  assert.equal(m.body.length, big.length);
  assert.equal(m.body, big);
});
