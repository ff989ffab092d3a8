'use strict';
// SAS token renewal by the device SDK: with a short token lifetime the SDK
// disconnects and reconnects (same ClientId, CleanSession=0, new password)
// WITHOUT re-subscribing, so methods / twin / C2D must keep working on the
// session the broker kept (SDK-NOTES.md §0.8, §2.7).
const test = require('node:test');
const assert = require('node:assert/strict');

const {
  useEmulator, withTimeout, waitFor, waitForSubscribed, updateReported,
  instrumentedMqtt, tokenExpiry, deviceSdk, subscribeEverything } = require('./lib/harness');
const { nowSeconds } = require('./lib/sas');

const ctx = useEmulator('sas-renewal');
const T = 15000;
// Renewal every VALID - MARGIN = 20 s; tokens live 60 s.
const VALID = 60;
const MARGIN = 40;

test('device keeps telemetry, methods, twin and C2D across a SAS renewal', { timeout: 150000 }, async () => {
  const dev = await ctx.createDevice('renew-1');
  const cs = ctx.emu.deviceConnectionString('renew-1', dev.authentication.symmetricKey.primaryKey);
  const { Transport, connections } = instrumentedMqtt();
  const provider = deviceSdk.SharedAccessKeyAuthenticationProvider.fromConnectionString(cs);
  const client = ctx.trackClient(deviceSdk.Client.fromAuthenticationProvider(provider, Transport));
  const renewals = [];
  provider.on('newTokenAvailable', (creds) => renewals.push(creds.sharedAccessSignature));

  // The option names checked in azure-iot-device-mqtt/dist/mqtt.js setOptions.
  await withTimeout(client.setOptions({ tokenRenewal: { tokenValidTimeInSeconds: VALID, tokenRenewalMarginInSeconds: MARGIN } }), T, 'setOptions');
  await withTimeout(client.open(), 20000, 'open');
  const openedAt = Date.now();

  assert.equal(connections.length, 1);
  const c0 = connections[0];
  assert.equal(c0.connected, true);
  assert.equal(c0.clean, false, 'SDK connects with CleanSession=0');
  assert.equal(c0.clientId, 'renew-1');
  const se0 = tokenExpiry(c0.password);
  assert.ok(Math.abs(se0 - (nowSeconds() + VALID)) <= 10, `first token lives ~${VALID} s (se=${se0}): tokenRenewal options applied`);

  // Register everything that needs a subscription.
  const { c2d, desired, twin } = await subscribeEverything(client, T);
  assert.deepEqual([...c0.subscriptions].sort(), [
    '$iothub/methods/POST/#',
    '$iothub/twin/PATCH/properties/desired/#',
    '$iothub/twin/res/#',
    'devices/renew-1/messages/devicebound/#',
  ]);

  // Everything works before the renewal.
  const m1 = new deviceSdk.Message('before renewal');
  m1.messageId = 'renew-before';
  await withTimeout(client.sendEvent(m1), T, 'sendEvent before');
  await ctx.emu.waitForMessage('renew-1', (x) => x.systemProperties['message-id'] === 'renew-before');
  const r1 = await withTimeout(ctx.service.invokeDeviceMethod('renew-1', { methodName: 'ping', payload: 1, responseTimeoutInSeconds: 10 }), 20000, 'invoke before');
  assert.deepEqual(r1.result, { status: 200, payload: { pong: 1 } });
  assert.ok(Date.now() - openedAt < (VALID - MARGIN) * 1000, 'pre-renewal checks finished before the renewal was due');
  assert.equal(connections.length, 1, 'no reconnect before the renewal');

  // Wait for the SDK's renewal: a second CONNECT that gets its CONNACK.
  await waitFor(() => connections.length >= 2 && connections[1].connected, {
    timeout: (VALID - MARGIN) * 1000 + 20000, interval: 100, label: 'renewal reconnect accepted by the emulator',
  });
  assert.ok(renewals.length >= 1, 'newTokenAvailable fired');
  const c1 = connections[1];
  assert.equal(c0.closed, true, 'old connection closed');
  assert.equal(c1.clientId, c0.clientId);
  assert.equal(c1.username, c0.username);
  assert.equal(c1.clean, false);
  assert.notEqual(c1.password, c0.password, 'new token');
  assert.ok(tokenExpiry(c1.password) > se0, 'later expiry');
  assert.deepEqual(c1.subscriptions, [], 'the SDK does not re-subscribe after a renewal (the session must keep them)');

  // Everything still works, on the new connection.
  const m2 = new deviceSdk.Message('after renewal');
  m2.messageId = 'renew-after';
  m2.properties.add('phase', 'after');
  await withTimeout(client.sendEvent(m2), T, 'sendEvent after');
  const got = await ctx.emu.waitForMessage('renew-1', (x) => x.systemProperties['message-id'] === 'renew-after');
  assert.equal(got.body, 'after renewal');
  assert.equal(got.properties.phase, 'after');

  const r2 = await withTimeout(ctx.service.invokeDeviceMethod('renew-1', { methodName: 'ping', payload: 2, responseTimeoutInSeconds: 10 }), 20000, 'invoke after');
  assert.deepEqual(r2.result, { status: 200, payload: { pong: 2 } }, 'method subscription survived the renewal');

  const { responseBody: st } = await withTimeout(ctx.registry.updateTwin('renew-1', { properties: { desired: { afterRenewal: true } } }, '*'), T, 'updateTwin');
  const patch = await waitFor(() => desired.find((p) => p.afterRenewal === true), { timeout: 10000, label: 'desired push after renewal' });
  assert.equal(patch.$version, st.properties.desired.$version);

  const sent = await ctx.emu.sendC2D('renew-1', { body: 'c2d after renewal', properties: { n: '1' }, messageId: 'renew-c2d' });
  assert.equal(sent.status, 202, sent.text);
  const msg = await waitFor(() => c2d.find((m) => m.messageId === 'renew-c2d'), { timeout: 10000, label: 'C2D after renewal' });
  assert.equal(msg.data.toString(), 'c2d after renewal');

  await updateReported(twin, { renewed: true });
  const { responseBody: st2 } = await withTimeout(ctx.registry.getTwin('renew-1'), T, 'getTwin');
  assert.equal(st2.properties.reported.renewed, true, 'twin response subscription survived the renewal');

  assert.equal(connections.length, 2, 'all of that ran on the renewed connection');
  assert.equal(c1.closed, false);
  const { responseBody: d } = await withTimeout(ctx.registry.get('renew-1'), T, 'get');
  assert.equal(String(d.connectionState).toLowerCase(), 'connected');
});
