'use strict';
// Direct methods: device onDeviceMethod over MQTT, service invokeDeviceMethod
// over HTTPS (SDK-NOTES.md §1.3, §1.4, §2.6).
const test = require('node:test');
const assert = require('node:assert/strict');

const { useEmulator, withTimeout, waitForSubscribed } = require('./lib/harness');


let client;
const seen = [];

const ctx = useEmulator('methods', async () => {
  const dev = await ctx.createDevice('meth-1');
  client = await ctx.connectDevice(dev);
  client.onDeviceMethod('echo', (req, res) => {
    seen.push({ methodName: req.methodName, payload: req.payload, requestId: req.requestId });
    res.send(200, { echo: req.payload === undefined ? '<undefined>' : req.payload, method: req.methodName });
  });
  client.onDeviceMethod('fail', (req, res) => res.send(503, { error: 'busy', retryAfter: 5 }));
  client.onDeviceMethod('silent', () => { /* never answers */ });
  await waitForSubscribed(client, 'method');
});

function invoke(deviceId, params, ms = 20000) {
  return withTimeout(ctx.service.invokeDeviceMethod(deviceId, params), ms, `invokeDeviceMethod(${deviceId}, ${params.methodName})`);
}

test('invoke returns the device status and payload', { timeout: 30000 }, async () => {
  const { result, message } = await invoke('meth-1', { methodName: 'echo', payload: { a: 1, b: 'x', nested: [1, 2] }, responseTimeoutInSeconds: 10 });
  assert.equal(message.statusCode, 200);
  assert.deepEqual(result, { status: 200, payload: { echo: { a: 1, b: 'x', nested: [1, 2] }, method: 'echo' } });
  const last = seen[seen.length - 1];
  assert.equal(last.methodName, 'echo');
  assert.equal(typeof last.requestId, 'string');
  assert.ok(last.requestId.length > 0, 'the request carried a $rid');
});

test('a non-200 device status is returned as data (HTTP 200)', { timeout: 30000 }, async () => {
  const { result, message } = await invoke('meth-1', { methodName: 'fail', payload: null, responseTimeoutInSeconds: 10 });
  assert.equal(message.statusCode, 200);
  assert.deepEqual(result, { status: 503, payload: { error: 'busy', retryAfter: 5 } });
});

test('null payload reaches the device as JSON null', { timeout: 30000 }, async () => {
  // An empty MQTT body would make the SDK answer 400 "Invalid request format" itself.
  const { result } = await invoke('meth-1', { methodName: 'echo', responseTimeoutInSeconds: 10 });
  assert.equal(result.status, 200, `device answered ${JSON.stringify(result)}`);
  assert.equal(result.payload.echo, null, 'the SDK parses a "null" body to null');
});

test('scalar payloads (string, number) round-trip', { timeout: 30000 }, async () => {
  const s = await invoke('meth-1', { methodName: 'echo', payload: 'hello', responseTimeoutInSeconds: 10 });
  assert.deepEqual(s.result, { status: 200, payload: { echo: 'hello', method: 'echo' } });
  const n = await invoke('meth-1', { methodName: 'echo', payload: 42, responseTimeoutInSeconds: 10 });
  assert.deepEqual(n.result, { status: 200, payload: { echo: 42, method: 'echo' } });
});

test('concurrent invocations are matched to their own responses', { timeout: 30000 }, async () => {
  const results = await Promise.all([1, 2, 3, 4].map((i) => invoke('meth-1', { methodName: 'echo', payload: { i }, responseTimeoutInSeconds: 10 })));
  assert.deepEqual(results.map((r) => r.result.payload.echo.i), [1, 2, 3, 4]);
});

test('a device that does not answer in time gives 504 GatewayTimeoutError', { timeout: 30000 }, async () => {
  const started = Date.now();
  await assert.rejects(invoke('meth-1', { methodName: 'silent', payload: {}, responseTimeoutInSeconds: 5 }), (err) => {
    assert.equal(err.name, 'GatewayTimeoutError', `got ${err.name}: ${err.message}`);
    assert.equal(err.response.statusCode, 504);
    return true;
  });
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 4000, `waited the response timeout (${elapsed} ms)`);
  assert.ok(elapsed < 15000, `gave up near the response timeout (${elapsed} ms)`);
});

function assertNotOnline(err) {
  assert.ok(err.response, `expected an HTTP error, got ${err.stack}`);
  assert.equal(err.response.statusCode, 404, `status ${err.response.statusCode}: ${err.responseBody}`);
  assert.notEqual(err.name, 'DeviceNotFoundError', 'the device exists: must not be DeviceNotFound');
  assert.match(err.responseBody, /DeviceNotOnline|404103/, `body names DeviceNotOnline / 404103: ${err.responseBody}`);
  return true;
}

test('invoking on a registered but never-connected device is 404 DeviceNotOnline (404103)', { timeout: 30000 }, async () => {
  await ctx.createDevice('meth-offline');
  const started = Date.now();
  await assert.rejects(invoke('meth-offline', { methodName: 'echo', payload: {}, responseTimeoutInSeconds: 10, connectTimeoutInSeconds: 0 }), assertNotOnline);
  assert.ok(Date.now() - started < 5000, 'connectTimeoutInSeconds 0: fails at once');
});

test('invoking on a device that disconnected is 404 DeviceNotOnline', { timeout: 45000 }, async () => {
  const dev = await ctx.createDevice('meth-gone');
  const c = await ctx.connectDevice(dev);
  c.onDeviceMethod('echo', (req, res) => res.send(200, {}));
  await waitForSubscribed(c, 'method');
  const ok = await invoke('meth-gone', { methodName: 'echo', payload: {}, responseTimeoutInSeconds: 10 });
  assert.equal(ok.result.status, 200);
  await ctx.closeClient(c);
  await assert.rejects(invoke('meth-gone', { methodName: 'echo', payload: {}, responseTimeoutInSeconds: 10 }), assertNotOnline);
});

test('invoking on an unknown device is 404 DeviceNotFoundError', { timeout: 30000 }, async () => {
  await assert.rejects(invoke('meth-no-such-device', { methodName: 'echo', payload: {}, responseTimeoutInSeconds: 10 }), (err) => {
    assert.equal(err.name, 'DeviceNotFoundError', `got ${err.name}: ${err.message} body=${err.responseBody}`);
    return true;
  });
});
