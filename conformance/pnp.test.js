'use strict';
// IoT Plug and Play: the model id the SDK announces in the MQTT username
// (setOptions({modelId}) → "&model-id=<id>", inserted unencoded, SDK-NOTES §2.1)
// is stamped on telemetry as dt-dataschema and shown as the twin's modelId;
// the SDK sends the app property "dt-subject" as $.sub (reference §3, §7).
const test = require('node:test');
const assert = require('node:assert/strict');

const { useEmulator, withTimeout, deviceSdk } = require('./lib/harness');

const T = 15000;
const MODEL_ID = 'dtmi:com:example:TemperatureController;2';
let client;

const ctx = useEmulator('pnp', async () => {
  const dev = await ctx.createDevice('pnp-1');
  client = ctx.deviceClient(ctx.emu.deviceConnectionString('pnp-1', dev.authentication.symmetricKey.primaryKey));
  await withTimeout(client.setOptions({ modelId: MODEL_ID }), T, 'setOptions modelId');
  await withTimeout(client.open(), 20000, 'open with model-id');
});

test('telemetry carries dt-dataschema = the announced model id', { timeout: 30000 }, async () => {
  const msg = new deviceSdk.Message(JSON.stringify({ temperature: 22 }));
  msg.messageId = 'pnp-t1';
  msg.contentType = 'application/json';
  msg.contentEncoding = 'utf-8';
  await withTimeout(client.sendEvent(msg), T, 'sendEvent');
  const m = await ctx.emu.waitForMessage('pnp-1', (x) => x.systemProperties['message-id'] === 'pnp-t1');
  assert.equal(m.systemProperties['dt-dataschema'], MODEL_ID);
});

test('component telemetry: dt-subject (sent as $.sub) is a system property', { timeout: 30000 }, async () => {
  const msg = new deviceSdk.Message(JSON.stringify({ temperature: 23 }));
  msg.messageId = 'pnp-t2';
  msg.properties.add('dt-subject', 'thermostat1');
  await withTimeout(client.sendEvent(msg), T, 'sendEvent');
  const m = await ctx.emu.waitForMessage('pnp-1', (x) => x.systemProperties['message-id'] === 'pnp-t2');
  assert.equal(m.systemProperties['dt-subject'], 'thermostat1');
  assert.equal((m.properties || {})['$.sub'], undefined, '$.sub is not an application property');
});

test('service twin shows the modelId', { timeout: 30000 }, async () => {
  const { responseBody: t } = await withTimeout(ctx.registry.getTwin('pnp-1'), T, 'getTwin');
  assert.equal(t.modelId, MODEL_ID);
});
