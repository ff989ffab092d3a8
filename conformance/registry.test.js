'use strict';
// Device identity registry through azure-iothub's Registry (HTTPS, port 443).
// SDK-NOTES.md §1.2 lists the exact requests.
const test = require('node:test');
const assert = require('node:assert/strict');

const { useEmulator, withTimeout, iothub } = require('./lib/harness');
const { policyToken, sasToken, nowSeconds } = require('./lib/sas');

const ctx = useEmulator('registry');
const T = 15000;

function assertKey(k, what) {
  assert.equal(typeof k, 'string', `${what} must be a string`);
  assert.ok(k.length > 0, `${what} must not be empty (the hub generates keys when given empty ones)`);
  const raw = Buffer.from(k, 'base64');
  assert.equal(raw.toString('base64'), k, `${what} must be canonical base64: ${k}`);
  assert.ok(raw.length >= 16, `${what} must decode to >= 16 bytes (hub keys are 32), got ${raw.length}`);
}

// Mirrors azure-iothub/dist/common-http/http.js parseErrorBody.
function errorCodeOf(body) {
  const j = JSON.parse(body);
  assert.equal(typeof j.Message, 'string', `error body needs a string "Message": ${body}`);
  const m = /^ErrorCode:([^;]+);(.+)$/s.exec(j.Message);
  assert.ok(m, `"Message" must be "ErrorCode:<code>;<text>" with non-empty text: ${j.Message}`);
  return m[1];
}

test('create: generates SAS keys and returns the full device', { timeout: 30000 }, async () => {
  const res = await withTimeout(ctx.registry.create({ deviceId: 'reg-1' }), T, 'create');
  assert.equal(res.httpResponse.statusCode, 200);
  assert.match(res.httpResponse.headers['content-type'] || '', /application\/json/);
  const d = res.responseBody;
  assert.equal(d.deviceId, 'reg-1');
  assert.equal(d.status, 'enabled');
  assert.equal(String(d.connectionState).toLowerCase(), 'disconnected');
  assert.equal(d.authentication.type, 'sas');
  assertKey(d.authentication.symmetricKey.primaryKey, 'primaryKey');
  assertKey(d.authentication.symmetricKey.secondaryKey, 'secondaryKey');
  assert.notEqual(d.authentication.symmetricKey.primaryKey, d.authentication.symmetricKey.secondaryKey);
  assert.equal(typeof d.etag, 'string');
  assert.ok(d.etag.length > 0, 'etag');
  assert.equal(typeof d.generationId, 'string');
  assert.ok(d.generationId.length > 0, 'generationId');
  assert.equal(Number(d.cloudToDeviceMessageCount), 0);
});

test('create: keeps caller-supplied keys and status', { timeout: 30000 }, async () => {
  const primaryKey = Buffer.alloc(32, 1).toString('base64');
  const secondaryKey = Buffer.alloc(32, 2).toString('base64');
  const { responseBody: d } = await withTimeout(ctx.registry.create({
    deviceId: 'reg-2',
    status: 'disabled',
    authentication: { symmetricKey: { primaryKey, secondaryKey } },
  }), T, 'create');
  assert.equal(d.deviceId, 'reg-2');
  assert.equal(d.status, 'disabled');
  assert.equal(d.authentication.symmetricKey.primaryKey, primaryKey);
  assert.equal(d.authentication.symmetricKey.secondaryKey, secondaryKey);
});

test('get: returns the stored device with the same keys and etag', { timeout: 30000 }, async () => {
  const { responseBody: created } = await withTimeout(ctx.registry.create({ deviceId: 'reg-3' }), T, 'create');
  const res = await withTimeout(ctx.registry.get('reg-3'), T, 'get');
  assert.equal(res.httpResponse.statusCode, 200);
  const d = res.responseBody;
  assert.equal(d.deviceId, 'reg-3');
  assert.equal(d.authentication.symmetricKey.primaryKey, created.authentication.symmetricKey.primaryKey);
  assert.equal(d.authentication.symmetricKey.secondaryKey, created.authentication.symmetricKey.secondaryKey);
  assert.equal(d.etag, created.etag);
  assert.equal(d.generationId, created.generationId);
});

test('get: device ids with URL-special characters round-trip', { timeout: 30000 }, async () => {
  // Allowed id characters: alphanumerics and - . % _ * ? ! ( ) , : = @ $ '
  const id = "dev:a@b.c-d_e(1)'!*,=$";
  const { responseBody: created } = await withTimeout(ctx.registry.create({ deviceId: id }), T, 'create');
  assert.equal(created.deviceId, id);
  const { responseBody: got } = await withTimeout(ctx.registry.get(id), T, 'get');
  assert.equal(got.deviceId, id);
  await withTimeout(ctx.registry.delete(id), T, 'delete');
});

test('list: GET /devices/ returns an array including the created devices', { timeout: 30000 }, async () => {
  await withTimeout(ctx.registry.create({ deviceId: 'reg-list-a' }), T, 'create a');
  await withTimeout(ctx.registry.create({ deviceId: 'reg-list-b' }), T, 'create b');
  const res = await withTimeout(ctx.registry.list(), T, 'list');
  assert.equal(res.httpResponse.statusCode, 200);
  assert.ok(Array.isArray(res.responseBody));
  const ids = res.responseBody.map((d) => d.deviceId);
  assert.ok(ids.includes('reg-list-a'), `list has reg-list-a: ${ids}`);
  assert.ok(ids.includes('reg-list-b'), `list has reg-list-b: ${ids}`);
  assert.equal(new Set(ids).size, ids.length, 'no duplicates');
});

test('update: SDK update (If-Match "*") changes status and etag', { timeout: 30000 }, async () => {
  const { responseBody: d } = await withTimeout(ctx.registry.create({ deviceId: 'reg-upd' }), T, 'create');
  // The SDK sends back the whole Device object it got (etag, generationId, connectionState, x509Thumbprint nulls...).
  const { responseBody: fetched } = await withTimeout(ctx.registry.get('reg-upd'), T, 'get');
  fetched.status = 'disabled';
  fetched.statusReason = 'maintenance';
  const res = await withTimeout(ctx.registry.update(fetched), T, 'update');
  assert.equal(res.httpResponse.statusCode, 200);
  assert.equal(res.responseBody.deviceId, 'reg-upd');
  assert.equal(res.responseBody.status, 'disabled');
  assert.notEqual(res.responseBody.etag, d.etag, 'etag must change on update');
  assert.equal(res.responseBody.authentication.symmetricKey.primaryKey, d.authentication.symmetricKey.primaryKey, 'keys kept');
  const { responseBody: again } = await withTimeout(ctx.registry.get('reg-upd'), T, 'get after update');
  assert.equal(again.status, 'disabled');
  assert.equal(again.etag, res.responseBody.etag);
});

test('update: PUT with a stale If-Match etag is 412, with the current etag 200', { timeout: 30000 }, async () => {
  const { responseBody: d } = await withTimeout(ctx.registry.create({ deviceId: 'reg-etag' }), T, 'create');
  const body = {
    deviceId: 'reg-etag',
    status: 'disabled',
    authentication: { type: 'sas', symmetricKey: d.authentication.symmetricKey },
  };
  const path = '/devices/reg-etag?api-version=2021-04-12';
  const stale = await ctx.emu.rest('PUT', path, body, { 'If-Match': '"stale-etag-value"' });
  assert.equal(stale.status, 412, `stale etag: ${stale.text}`);
  errorCodeOf(stale.text);
  const { responseBody: unchanged } = await withTimeout(ctx.registry.get('reg-etag'), T, 'get');
  assert.equal(unchanged.status, 'enabled', 'a 412 must not modify the device');

  const ok = await ctx.emu.rest('PUT', path, body, { 'If-Match': `"${d.etag}"` });
  assert.equal(ok.status, 200, `current etag: ${ok.text}`);
  assert.equal(ok.json.status, 'disabled');
  assert.notEqual(ok.json.etag, d.etag);
});

test('create: duplicate id is 409 DeviceAlreadyExistsError', { timeout: 30000 }, async () => {
  await withTimeout(ctx.registry.create({ deviceId: 'reg-dup' }), T, 'create');
  await assert.rejects(withTimeout(ctx.registry.create({ deviceId: 'reg-dup' }), T, 'duplicate create'), (err) => {
    assert.equal(err.name, 'DeviceAlreadyExistsError', `got ${err.name}: ${err.message}`);
    assert.equal(err.response.statusCode, 409);
    assert.equal(errorCodeOf(err.responseBody), 'DeviceAlreadyExists');
    return true;
  });
});

test('get: unknown id is 404 DeviceNotFoundError', { timeout: 30000 }, async () => {
  await assert.rejects(withTimeout(ctx.registry.get('reg-no-such-device'), T, 'get unknown'), (err) => {
    // Only "ErrorCode:DeviceNotFound;<text>" yields this type (SDK-NOTES §0.4).
    assert.equal(err.name, 'DeviceNotFoundError', `got ${err.name}: ${err.message} body=${err.responseBody}`);
    assert.equal(err.response.statusCode, 404);
    return true;
  });
});

test('delete: removes the device; deleting again is DeviceNotFoundError', { timeout: 30000 }, async () => {
  await withTimeout(ctx.registry.create({ deviceId: 'reg-del' }), T, 'create');
  const res = await withTimeout(ctx.registry.delete('reg-del'), T, 'delete');
  assert.ok(res.httpResponse.statusCode >= 200 && res.httpResponse.statusCode < 300, `status ${res.httpResponse.statusCode}`);
  await assert.rejects(withTimeout(ctx.registry.get('reg-del'), T, 'get deleted'), (err) => err.name === 'DeviceNotFoundError');
  await assert.rejects(withTimeout(ctx.registry.delete('reg-del'), T, 'delete again'), (err) => err.name === 'DeviceNotFoundError');
  const { responseBody: list } = await withTimeout(ctx.registry.list(), T, 'list');
  assert.ok(!list.some((d) => d.deviceId === 'reg-del'), 'deleted device not listed');
});

test('delete + re-create gets a new generationId', { timeout: 30000 }, async () => {
  const { responseBody: a } = await withTimeout(ctx.registry.create({ deviceId: 'reg-gen' }), T, 'create');
  await withTimeout(ctx.registry.delete('reg-gen'), T, 'delete');
  const { responseBody: b } = await withTimeout(ctx.registry.create({ deviceId: 'reg-gen' }), T, 're-create');
  assert.notEqual(b.generationId, a.generationId);
});

test('bulk: addDevices creates every device with generated keys', { timeout: 30000 }, async () => {
  const ids = ['bulk-1', 'bulk-2', 'bulk-3'];
  const res = await withTimeout(ctx.registry.addDevices(ids.map((deviceId) => ({ deviceId }))), T, 'addDevices');
  assert.equal(res.httpResponse.statusCode, 200);
  assert.equal(res.responseBody.isSuccessful, true, `bulk result: ${JSON.stringify(res.responseBody)}`);
  assert.deepEqual(res.responseBody.errors || [], []);
  for (const id of ids) {
    const { responseBody: d } = await withTimeout(ctx.registry.get(id), T, `get ${id}`);
    assert.equal(d.deviceId, id);
    assertKey(d.authentication.symmetricKey.primaryKey, `${id} primaryKey`);
  }
});

test('bulk: a create of an existing id is reported as a failure for that id', { timeout: 30000 }, async () => {
  await withTimeout(ctx.registry.create({ deviceId: 'bulk-dup' }), T, 'create');
  let result;
  try {
    result = (await withTimeout(ctx.registry.addDevices([{ deviceId: 'bulk-dup' }, { deviceId: 'bulk-new' }]), T, 'addDevices')).responseBody;
  } catch (err) {
    assert.ok(err.response, `expected an HTTP error, got ${err.stack}`);
    assert.ok(err.response.statusCode >= 400 && err.response.statusCode < 500, `status ${err.response.statusCode}`);
    result = JSON.parse(err.responseBody);
  }
  assert.equal(result.isSuccessful, false, JSON.stringify(result));
  const e = (result.errors || []).find((x) => x.deviceId === 'bulk-dup');
  assert.ok(e, `errors[] names bulk-dup: ${JSON.stringify(result)}`);
  assert.equal(e.errorCode, 'DeviceAlreadyExists');
});

test('service auth: wrong policy key is 401 UnauthorizedError', { timeout: 30000 }, async () => {
  const bad = ctx.emu.serviceConnectionString.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`);
  const reg = iothub.Registry.fromConnectionString(bad);
  await assert.rejects(withTimeout(reg.get('reg-1'), T, 'get with bad key'), (err) => {
    assert.equal(err.name, 'UnauthorizedError', `got ${err.name}: ${err.message}`);
    assert.equal(err.response.statusCode, 401);
    return true;
  });
});

test('service auth: expired / missing / foreign tokens are 401', { timeout: 30000 }, async () => {
  const { hostName, keyName, key } = ctx.emu.policy;
  const expired = sasToken({ resource: hostName, key, keyName, expiry: nowSeconds() - 3600, encodeResource: false });
  const reg = iothub.Registry.fromSharedAccessSignature(expired);
  await assert.rejects(withTimeout(reg.get('reg-1'), T, 'get with expired token'), (err) => err.name === 'UnauthorizedError');

  const none = await ctx.emu.rest('GET', '/devices/reg-1?api-version=2021-04-12', undefined, { Authorization: '' });
  assert.equal(none.status, 401, `no token: ${none.text}`);
  const otherHub = policyToken('otherhub.azure-devices.net', keyName, key);
  const foreign = await ctx.emu.rest('GET', '/devices/reg-1?api-version=2021-04-12', undefined, { Authorization: otherHub });
  assert.equal(foreign.status, 401, `token for another hub: ${foreign.text}`);
});

test('service auth: token fields in another order (sr,sig,se,skn) are accepted', { timeout: 30000 }, async () => {
  // §2: field order varies between SDKs; parse in any order.
  const { hostName, keyName, key } = ctx.emu.policy;
  const tok = sasToken({ resource: hostName, key, keyName, expiry: nowSeconds() + 600, encodeResource: false });
  const m = /^SharedAccessSignature sr=([^&]+)&sig=([^&]+)&skn=([^&]+)&se=(\d+)$/.exec(tok);
  assert.ok(m, tok);
  const reordered = `SharedAccessSignature sr=${m[1]}&sig=${m[2]}&se=${m[4]}&skn=${m[3]}`;
  const res = await ctx.emu.rest('GET', '/devices/reg-1?api-version=2021-04-12', undefined, { Authorization: reordered });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.deviceId, 'reg-1');
});
