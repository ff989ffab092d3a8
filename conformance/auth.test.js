'use strict';
// Device authentication over MQTT: refused credentials, and a live
// connection closed when its token expires on the emulator's clock.
// The clock-advance test is last in this file: it moves this emulator's clock.
const test = require('node:test');
const assert = require('node:assert/strict');

const { useEmulator, withTimeout, waitFor, sleep, noRetryPolicy, deviceSdk, Mqtt } = require('./lib/harness');
const { deviceToken, nowSeconds } = require('./lib/sas');

const ctx = useEmulator('auth');
const T = 15000;
// The first-connection error message keeps MQTT.js's CONNACK text (SDK-NOTES §2.1).
const CONNACK_REFUSED = /Connection refused: (Not authorized|Bad username or password|Server unavailable|Identifier rejected)/;
const CONNACK_BAD_CREDENTIALS = /Connection refused: (Not authorized|Bad username or password)/;

// A client authenticated by a ready-made SAS token. A `SharedAccessSignature=`
// connection string would lose GatewayHostName (SDK-NOTES §0.6), so the
// SDK's public SAS provider is built with the gateway host:port.
function sasClient(deviceId, token) {
  const provider = new deviceSdk.SharedAccessSignatureAuthenticationProvider({
    host: ctx.emu.hostName,
    gatewayHostName: `${ctx.emu.hostName}:${ctx.emu.mqttPort}`,
    deviceId,
    sharedAccessSignature: token,
  });
  return ctx.trackClient(deviceSdk.Client.fromAuthenticationProvider(provider, Mqtt));
}

async function expectRefused(client, pattern, what) {
  await assert.rejects(withTimeout(client.open(), 20000, `open (${what})`), (err) => {
    assert.equal(err.name, 'UnauthorizedError', `${what}: got ${err.name}: ${err.message}`);
    assert.match(err.message, pattern, `${what}: refused by CONNACK, not by TLS/socket: ${err.message}`);
    return true;
  });
}

test('a valid key connects (control)', { timeout: 30000 }, async () => {
  const dev = await ctx.createDevice('auth-ok');
  const client = await ctx.connectDevice(dev);
  const msg = new deviceSdk.Message('control');
  msg.messageId = 'auth-ok-1';
  await withTimeout(client.sendEvent(msg), T, 'sendEvent');
  await ctx.emu.waitForMessage('auth-ok', (x) => x.systemProperties['message-id'] === 'auth-ok-1');
  await ctx.closeClient(client);
});

test('wrong key: open() rejects with UnauthorizedError (CONNACK 4/5)', { timeout: 30000 }, async () => {
  await ctx.createDevice('auth-wrong');
  const wrongKey = Buffer.alloc(32, 9).toString('base64');
  const client = ctx.deviceClient(ctx.emu.deviceConnectionString('auth-wrong', wrongKey));
  await expectRefused(client, CONNACK_BAD_CREDENTIALS, 'wrong key');
  const { responseBody: d } = await withTimeout(ctx.registry.get('auth-wrong'), T, 'get');
  assert.equal(String(d.connectionState).toLowerCase(), 'disconnected');
});

test('secondary key is accepted too', { timeout: 30000 }, async () => {
  const dev = await ctx.createDevice('auth-secondary');
  const client = ctx.deviceClient(ctx.emu.deviceConnectionString('auth-secondary', dev.authentication.symmetricKey.secondaryKey));
  await withTimeout(client.open(), 20000, 'open with secondary key');
  await ctx.closeClient(client);
});

test('unknown device is refused', { timeout: 30000 }, async () => {
  const client = ctx.deviceClient(ctx.emu.deviceConnectionString('auth-no-such-device', Buffer.alloc(32, 3).toString('base64')));
  await expectRefused(client, CONNACK_REFUSED, 'unknown device');
});

test('disabled device is refused', { timeout: 30000 }, async () => {
  const dev = await ctx.createDevice('auth-disabled', { status: 'disabled' });
  const client = ctx.deviceClient(ctx.emu.deviceConnectionString('auth-disabled', dev.authentication.symmetricKey.primaryKey));
  // CONNACK 3 (Server unavailable, reference §3) becomes a *retryable*
  // ServiceUnavailableError in the SDK (open() would retry for 4 minutes):
  // take the first answer.
  client.setRetryPolicy(noRetryPolicy);
  await assert.rejects(withTimeout(client.open(), 20000, 'open (disabled device)'), (err) => {
    assert.ok(['UnauthorizedError', 'ServiceUnavailableError'].includes(err.name), `got ${err.name}: ${err.message}`);
    assert.match(err.message, CONNACK_REFUSED, `refused by CONNACK, not by TLS/socket: ${err.message}`);
    return true;
  });
});

test("a token for another device is refused", { timeout: 30000 }, async () => {
  const a = await ctx.createDevice('auth-a');
  await ctx.createDevice('auth-b');
  const tokenForA = deviceToken(ctx.emu.hostName, 'auth-a', a.authentication.symmetricKey.primaryKey, nowSeconds() + 3600);
  await expectRefused(sasClient('auth-b', tokenForA), CONNACK_BAD_CREDENTIALS, 'token of auth-a used as auth-b');
});

test('an already expired token is refused', { timeout: 30000 }, async () => {
  const dev = await ctx.createDevice('auth-old');
  // One hour in the past: beyond any clock-skew allowance.
  const token = deviceToken(ctx.emu.hostName, 'auth-old', dev.authentication.symmetricKey.primaryKey, nowSeconds() - 3600);
  await expectRefused(sasClient('auth-old', token), CONNACK_BAD_CREDENTIALS, 'expired token');
});

test('a live connection is closed when its token expires on the emulator clock', { timeout: 90000 }, async () => {
  const dev = await ctx.createDevice('auth-exp');
  const key = dev.authentication.symmetricKey.primaryKey;
  const token = deviceToken(ctx.emu.hostName, 'auth-exp', key, nowSeconds() + 120);
  const client = sasClient('auth-exp', token);
  client.setRetryPolicy(noRetryPolicy); // report the close as a 'disconnect' event (SDK-NOTES §2.8)
  const disconnects = [];
  client.on('disconnect', (d) => disconnects.push(d));
  await withTimeout(client.open(), 20000, 'open with a 120 s token');

  const m = new deviceSdk.Message('token still valid');
  m.messageId = 'auth-exp-1';
  await withTimeout(client.sendEvent(m), T, 'sendEvent');
  await ctx.emu.waitForMessage('auth-exp', (x) => x.systemProperties['message-id'] === 'auth-exp-1');
  await sleep(2000);
  assert.equal(disconnects.length, 0, 'a connection with a valid token stays up');

  // Past the token's se and past any skew allowance (reference §2: ~5 min).
  await ctx.emu.advanceClock(1000);
  const ev = await waitFor(() => disconnects[0], { timeout: 20000, interval: 100, label: "client 'disconnect' after the token expired on the emulator clock" });
  assert.equal(ev.transportObj && ev.transportObj.name, 'NotConnectedError', `disconnect reason: ${ev.transportObj}`);

  // The same (now expired) token cannot reconnect...
  await assert.rejects(withTimeout(client.open(), 20000, 'reopen with the expired token'), (err) => {
    const t = err.transportError || err;
    assert.match(String(t.message), CONNACK_BAD_CREDENTIALS, `refused by CONNACK: ${err.name}: ${err.message}`);
    return true;
  });
  // ...while a fresh token (wall clock + 1 h, still ahead of the advanced clock) can.
  const fresh = await ctx.connectDevice(dev);
  const m2 = new deviceSdk.Message('fresh token');
  m2.messageId = 'auth-exp-2';
  await withTimeout(fresh.sendEvent(m2), T, 'sendEvent with fresh token');
  await ctx.emu.waitForMessage('auth-exp', (x) => x.systemProperties['message-id'] === 'auth-exp-2');
});
