'use strict';
// Device twin: device getTwin / reported patches over MQTT, service
// getTwin / updateTwin over HTTPS, desired pushes (SDK-NOTES.md §1.2, §2.5).
const test = require('node:test');
const assert = require('node:assert/strict');

const { useEmulator, withTimeout, waitFor, updateReported } = require('./lib/harness');

const T = 15000;

let client;
let twin;
const desiredEvents = [];

const ctx = useEmulator('twin', async () => {
  const dev = await ctx.createDevice('twin-1');
  client = await ctx.connectDevice(dev);
  twin = await withTimeout(client.getTwin(), T, 'device getTwin');
  twin.on('properties.desired', (patch) => desiredEvents.push(JSON.parse(JSON.stringify(patch))));
  // Registering the listener SUBSCRIBEs to $iothub/twin/PATCH/properties/desired/#.
  // A twin GET round trip afterwards guarantees the broker has seen that SUBSCRIBE
  // (packets of one connection are handled in order).
  await withTimeout(client.getTwin(), T, 'device getTwin (barrier)');
});

async function serviceTwin(id = 'twin-1') {
  return (await withTimeout(ctx.registry.getTwin(id), T, `service getTwin(${id})`)).responseBody;
}

function waitDesired(match, label) {
  return waitFor(() => desiredEvents.find(match), { timeout: 10000, interval: 50, label });
}

test('device getTwin: desired and reported carry integer $version', { timeout: 30000 }, async () => {
  const t = await withTimeout(client.getTwin(), T, 'getTwin');
  assert.ok(Number.isInteger(t.properties.desired.$version), `desired.$version: ${JSON.stringify(t.properties.desired)}`);
  assert.ok(Number.isInteger(t.properties.reported.$version), `reported.$version: ${JSON.stringify(t.properties.reported)}`);
});

test('service getTwin: twin document shape', { timeout: 30000 }, async () => {
  const st = await serviceTwin();
  assert.equal(st.deviceId, 'twin-1');
  assert.equal(typeof st.etag, 'string');
  assert.ok(st.etag.length > 0 && st.etag !== '*', `etag: ${st.etag}`);
  assert.ok(Number.isInteger(st.version), `version: ${st.version}`);
  assert.equal(st.status, 'enabled');
  assert.equal(String(st.connectionState).toLowerCase(), 'connected');
  assert.equal(typeof st.tags, 'object');
  assert.ok(Number.isInteger(st.properties.desired.$version));
  assert.ok(Number.isInteger(st.properties.reported.$version));
  assert.equal(typeof st.properties.desired.$metadata, 'object', 'desired.$metadata');
  const dt = await withTimeout(client.getTwin(), T, 'getTwin');
  assert.equal(dt.properties.desired.$version, st.properties.desired.$version, 'device and service agree on desired $version');
});

test('reported patch from the device is visible through service getTwin', { timeout: 30000 }, async () => {
  const before = await serviceTwin();
  await updateReported(twin, { firmware: '1.2.3', telemetry: { interval: 30, enabled: true } });
  const st = await serviceTwin();
  assert.equal(st.properties.reported.firmware, '1.2.3');
  assert.deepEqual({ interval: st.properties.reported.telemetry.interval, enabled: st.properties.reported.telemetry.enabled }, { interval: 30, enabled: true });
  assert.ok(st.properties.reported.$version > before.properties.reported.$version, 'reported $version increases');
});

test('reported patch merges and a null member is deleted', { timeout: 30000 }, async () => {
  await updateReported(twin, { a: 1, b: { c: 2, d: 3 } });
  await updateReported(twin, { a: null, b: { d: null, e: 4 } });
  const r = (await serviceTwin()).properties.reported;
  assert.ok(!('a' in r), `a deleted: ${JSON.stringify(r)}`);
  assert.equal(r.b.c, 2, 'b.c kept (merge, not replace)');
  assert.ok(!('d' in r.b), 'b.d deleted');
  assert.equal(r.b.e, 4);
  assert.equal(r.firmware, '1.2.3', 'earlier members kept');
});

test('service desired update is pushed to the device with its $version', { timeout: 30000 }, async () => {
  const st = await serviceTwin();
  const oldEtag = st.etag;
  const { result } = await withTimeout(st.update({ tags: { site: 'lab' }, properties: { desired: { setpoint: 30, mode: 'eco' } } }), T, 'twin.update');
  assert.equal(result.tags.site, 'lab');
  assert.equal(result.properties.desired.setpoint, 30);
  assert.equal(result.properties.desired.mode, 'eco');
  assert.notEqual(result.etag, oldEtag, 'etag changes');
  const v = result.properties.desired.$version;
  assert.ok(Number.isInteger(v));

  const patch = await waitDesired((p) => p.setpoint === 30, 'desired patch with setpoint=30');
  assert.equal(patch.mode, 'eco');
  assert.equal(patch.$version, v, 'pushed $version equals the service twin desired.$version');
  assert.equal(twin.properties.desired.setpoint, 30, 'SDK merged the patch');

  const dt = await withTimeout(client.getTwin(), T, 'getTwin');
  assert.equal(dt.properties.desired.setpoint, 30);
  assert.equal(dt.properties.desired.$version, v);
});

test('desired $version increases by one per update and null deletes', { timeout: 30000 }, async () => {
  const st = await serviceTwin();
  const v0 = st.properties.desired.$version;
  const { responseBody: t1 } = await withTimeout(ctx.registry.updateTwin('twin-1', { properties: { desired: { mode: null, fan: 2 } } }, '*'), T, 'updateTwin *');
  assert.equal(t1.properties.desired.$version, v0 + 1);
  assert.ok(!('mode' in t1.properties.desired), 'mode deleted');
  assert.equal(t1.properties.desired.fan, 2);
  const patch = await waitDesired((p) => p.fan === 2, 'desired patch with fan=2');
  assert.equal(patch.$version, v0 + 1);
  assert.equal(patch.mode, null, 'deletion is pushed as null');
  assert.ok(!('mode' in twin.properties.desired), 'SDK removed mode');
  assert.equal(twin.properties.desired.setpoint, 30, 'other members kept');
});

test('updateTwin with a stale etag is 412 InvalidEtagError and changes nothing', { timeout: 30000 }, async () => {
  const st = await serviceTwin();
  const stale = st.etag;
  await withTimeout(ctx.registry.updateTwin('twin-1', { tags: { round: 1 } }, stale), T, 'updateTwin current etag');
  await assert.rejects(withTimeout(ctx.registry.updateTwin('twin-1', { tags: { round: 2 } }, stale), T, 'updateTwin stale etag'), (err) => {
    assert.equal(err.name, 'InvalidEtagError', `got ${err.name}: ${err.message}`);
    assert.equal(err.response.statusCode, 412);
    return true;
  });
  const now = await serviceTwin();
  assert.equal(now.tags.round, 1);
  assert.equal(now.tags.site, 'lab', 'tags merge');
});

test('twin of an unknown device is DeviceNotFoundError', { timeout: 30000 }, async () => {
  await assert.rejects(withTimeout(ctx.registry.getTwin('twin-no-such-device'), T, 'getTwin unknown'), (err) => {
    assert.equal(err.name, 'DeviceNotFoundError', `got ${err.name}: ${err.message} body=${err.responseBody}`);
    return true;
  });
});

test('desired set while the device is offline is seen by its next getTwin', { timeout: 45000 }, async () => {
  const dev = await ctx.createDevice('twin-offline');
  const { responseBody: t } = await withTimeout(ctx.registry.updateTwin('twin-offline', { properties: { desired: { late: 'yes' } } }, '*'), T, 'updateTwin');
  const c = await ctx.connectDevice(dev);
  const dt = await withTimeout(c.getTwin(), T, 'getTwin');
  assert.equal(dt.properties.desired.late, 'yes');
  assert.equal(dt.properties.desired.$version, t.properties.desired.$version);
  await ctx.closeClient(c);
});
