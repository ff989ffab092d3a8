'use strict';
// POST /emulator/faults/kick drops a device's connection. With its default
// retry policy the SDK reconnects by itself and re-subscribes C2D and methods,
// but NOT the twin topics (SDK-NOTES.md §2.2): desired pushes and twin replies
// after the reconnect rely on the broker keeping the CleanSession=0 session.
const test = require('node:test');
const assert = require('node:assert/strict');

const {
  useEmulator, withTimeout, waitFor, waitForSubscribed, updateReported, instrumentedMqtt, deviceSdk, subscribeEverything } = require('./lib/harness');

const ctx = useEmulator('faults');
const T = 15000;

test('after a kick the SDK reconnects and methods, twin and C2D work again', { timeout: 120000 }, async () => {
  const dev = await ctx.createDevice('fault-1');
  const { Transport, connections } = instrumentedMqtt();
  const client = ctx.deviceClient(ctx.emu.deviceConnectionString('fault-1', dev.authentication.symmetricKey.primaryKey), Transport);
  const userDisconnects = [];
  client.on('disconnect', (d) => userDisconnects.push(d));
  await withTimeout(client.open(), 20000, 'open');

  const { c2d, desired, twin } = await subscribeEverything(client, T);
  assert.equal(connections.length, 1);

  await ctx.emu.kick('fault-1');
  await waitFor(() => connections[0].closed, { timeout: 10000, label: 'connection closed by the kick' });
  const why = () => (userDisconnects.length
    ? ` (SDK gave up: ${userDisconnects[0].transportObj}; a kick should close the connection cleanly so MQTT.js reports 'close', not a socket error)`
    : '');
  await waitFor(() => connections.length >= 2 && connections[1].connected, { timeout: 20000, label: 'SDK reconnect after the kick' })
    .catch((err) => { err.message += why(); throw err; });
  assert.equal(connections[1].clean, false);
  await waitForSubscribed(client, 'message');
  await waitForSubscribed(client, 'method');
  assert.ok(!connections[1].subscriptions.some((t) => t.startsWith('$iothub/twin/')), 'SDK does not re-subscribe twin topics');

  const r = await withTimeout(ctx.service.invokeDeviceMethod('fault-1', { methodName: 'ping', payload: 'after kick', responseTimeoutInSeconds: 10 }), 20000, 'invoke');
  assert.deepEqual(r.result, { status: 200, payload: { pong: 'after kick' } });

  const { responseBody: st } = await withTimeout(ctx.registry.updateTwin('fault-1', { properties: { desired: { afterKick: 1 } } }, '*'), T, 'updateTwin');
  const patch = await waitFor(() => desired.find((p) => p.afterKick === 1), { timeout: 10000, label: 'desired push after the kick (session-kept subscription)' });
  assert.equal(patch.$version, st.properties.desired.$version);

  await updateReported(twin, { kicked: true });
  const { responseBody: st2 } = await withTimeout(ctx.registry.getTwin('fault-1'), T, 'getTwin');
  assert.equal(st2.properties.reported.kicked, true);

  const sent = await ctx.emu.sendC2D('fault-1', { body: 'after kick', properties: {}, messageId: 'kick-c2d' });
  assert.equal(sent.status, 202, sent.text);
  const msg = await waitFor(() => c2d.find((m) => m.messageId === 'kick-c2d'), { timeout: 10000, label: 'C2D after the kick' });
  assert.equal(msg.data.toString(), 'after kick');
  assert.equal(userDisconnects.length, 0, 'the SDK handled the drop without surfacing a disconnect');
});

test('a second connection for the same device drops the first', { timeout: 60000 }, async () => {
  // Reference §3: one connection per device.
  const dev = await ctx.createDevice('fault-dup');
  const first = instrumentedMqtt();
  const a = ctx.deviceClient(ctx.emu.deviceConnectionString('fault-dup', dev.authentication.symmetricKey.primaryKey), first.Transport);
  a.setRetryPolicy({ shouldRetry: () => false, nextRetryTimeout: () => -1 });
  const aDisconnects = [];
  a.on('disconnect', (d) => aDisconnects.push(d));
  await withTimeout(a.open(), 20000, 'open first');

  const b = await ctx.connectDevice(dev);
  await waitFor(() => first.connections[0].closed, { timeout: 10000, label: 'first connection dropped when the second connected' });
  await waitFor(() => aDisconnects.length > 0, { timeout: 10000, label: "first client's 'disconnect' event" });

  const m = new deviceSdk.Message('from the second connection');
  m.messageId = 'dup-2';
  await withTimeout(b.sendEvent(m), T, 'sendEvent on second');
  const got = await ctx.emu.waitForMessage('fault-dup', (x) => x.systemProperties['message-id'] === 'dup-2');
  assert.equal(got.body, 'from the second connection');
});
