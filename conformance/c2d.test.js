'use strict';
// Cloud-to-device: POST /emulator/devices/{id}/messages, received by the SDK
// client's 'message' event (SDK-NOTES.md §2.4).
const test = require('node:test');
const assert = require('node:assert/strict');

const { useEmulator, withTimeout, waitFor, sleep, waitForSubscribed } = require('./lib/harness');

const ctx = useEmulator('c2d');
const T = 15000;

// Collects 'message' events of a client; next(match) waits for one.
function inbox(client) {
  const got = [];
  client.on('message', (msg) => got.push(msg));
  return {
    got,
    async next(match, timeout = 10000, label = 'C2D message') {
      return waitFor(() => got.find(match), { timeout, interval: 50, label });
    },
  };
}

test('C2D message arrives with body, messageId, $.to and properties; complete() resolves', { timeout: 30000 }, async () => {
  const dev = await ctx.createDevice('c2d-1');
  const client = await ctx.connectDevice(dev);
  const box = inbox(client);
  await waitForSubscribed(client, 'message');

  const res = await ctx.emu.sendC2D('c2d-1', {
    body: 'hello device',
    properties: { color: 'blue', path: 'a/b c', amp: 'x&y=z', 'key with space': 'ü' },
    messageId: 'm1',
  });
  assert.equal(res.status, 202, res.text);

  const msg = await box.next((m) => m.messageId === 'm1');
  assert.equal(msg.data.toString('utf8'), 'hello device');
  assert.equal(msg.to, '/devices/c2d-1/messages/devicebound');
  assert.equal(msg.properties.getValue('color'), 'blue');
  assert.equal(msg.properties.getValue('path'), 'a/b c', 'a "/" in a value must be %2F-encoded in the topic');
  assert.equal(msg.properties.getValue('amp'), 'x&y=z');
  assert.equal(msg.properties.getValue('key with space'), 'ü');
  const done = await withTimeout(client.complete(msg), T, 'complete');
  assert.equal(done.constructor.name, 'MessageCompleted');
  assert.equal(box.got.filter((m) => m.messageId === 'm1').length, 1, 'delivered once');

  await waitFor(async () => {
    const { responseBody: d } = await ctx.registry.get('c2d-1');
    return Number(d.cloudToDeviceMessageCount) === 0;
  }, { timeout: 10000, label: 'cloudToDeviceMessageCount back to 0 after delivery' });
});

test('several C2D messages arrive in order', { timeout: 30000 }, async () => {
  const dev = await ctx.createDevice('c2d-order');
  const client = await ctx.connectDevice(dev);
  const box = inbox(client);
  await waitForSubscribed(client, 'message');
  for (let i = 0; i < 5; i++) {
    const r = await ctx.emu.sendC2D('c2d-order', { body: `n${i}`, properties: {}, messageId: `o${i}` });
    assert.equal(r.status, 202, r.text);
  }
  await waitFor(() => box.got.length >= 5, { timeout: 10000, label: '5 C2D messages' });
  assert.deepEqual(box.got.map((m) => m.messageId), ['o0', 'o1', 'o2', 'o3', 'o4']);
  assert.deepEqual(box.got.map((m) => m.data.toString()), ['n0', 'n1', 'n2', 'n3', 'n4']);
});

test('C2D to an unknown device is 404', { timeout: 30000 }, async () => {
  const res = await ctx.emu.sendC2D('c2d-no-such-device', { body: 'x', properties: {}, messageId: 'nx' });
  assert.equal(res.status, 404, res.text);
});

test('a message sent before the device ever connected is queued and delivered on subscribe', { timeout: 45000 }, async () => {
  const dev = await ctx.createDevice('c2d-offline');
  const res = await ctx.emu.sendC2D('c2d-offline', { body: 'queued while offline', properties: { q: '1' }, messageId: 'mq1' });
  assert.equal(res.status, 202, res.text);
  const { responseBody: d } = await withTimeout(ctx.registry.get('c2d-offline'), T, 'get');
  assert.equal(Number(d.cloudToDeviceMessageCount), 1, 'cloudToDeviceMessageCount counts the queued message');

  const client = await ctx.connectDevice(dev);
  const box = inbox(client);
  const msg = await box.next((m) => m.messageId === 'mq1', 15000, 'queued C2D message');
  assert.equal(msg.data.toString(), 'queued while offline');
  assert.equal(msg.properties.getValue('q'), '1');
  await withTimeout(client.complete(msg), T, 'complete');

  // Delivered (PUBACKed) once: a new session must not get it again.
  await ctx.closeClient(client);
  const again = await ctx.connectDevice(dev);
  const box2 = inbox(again);
  await waitForSubscribed(again, 'message');
  await sleep(2000);
  assert.equal(box2.got.filter((m) => m.messageId === 'mq1').length, 0, 'no redelivery after PUBACK');
  await ctx.closeClient(again);
});

test('a message sent while the device is disconnected arrives after it reconnects', { timeout: 45000 }, async () => {
  const dev = await ctx.createDevice('c2d-away');
  const first = await ctx.connectDevice(dev);
  inbox(first);
  await waitForSubscribed(first, 'message');
  await ctx.closeClient(first);

  const res = await ctx.emu.sendC2D('c2d-away', { body: 'while away', properties: {}, messageId: 'away-1' });
  assert.equal(res.status, 202, res.text);

  const second = await ctx.connectDevice(dev);
  const box = inbox(second);
  const msg = await box.next((m) => m.messageId === 'away-1', 15000, 'C2D sent while away');
  assert.equal(msg.data.toString(), 'while away');
});
