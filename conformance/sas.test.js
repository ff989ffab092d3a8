'use strict';
// Offline: the suite's SAS minting against the reference §2 vectors and
// against what the SDKs themselves produce. Needs no emulator.
const test = require('node:test');
const assert = require('node:assert/strict');

const { sasToken, hmacBase64, encodeStrict, deviceToken, policyToken, parseConnectionString, deriveDeviceKey } = require('./lib/sas');
const iothub = require('azure-iothub');
const deviceSdk = require('azure-iot-device');

test('§2 vector: HMAC of a plain string', () => {
  assert.equal(hmacBase64('cGFzc3dvcmQ=', 'string-to-sign'), 'o1n1hiIVgzVA2+krq9ty1Z4xsIJKJZP3dYT8MOi65Y4=');
});

test('§2 vector: resource "uri", skn encode(\'Me\') (SDK field order sr,sig,skn,se)', () => {
  assert.equal(
    sasToken({ resource: 'uri', key: 'cGFzc3dvcmQ=', expiry: 12345, keyName: "encode('Me')" }),
    'SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D&skn=encode%28%27Me%27%29&se=12345');
});

test('§2 vector: unpadded key, uppercase-encoded resource', () => {
  assert.equal(
    sasToken({ resource: 'host/devices/device', key: 'key', expiry: 12345 }),
    'SharedAccessSignature sr=host%2Fdevices%2Fdevice&sig=wM3XiP6gD960IxP7J5WHqnxQHEcWC6YaQCtoMT%2BkKHc%3D&se=12345');
});

test('§2 vector: lowercase-encoded resource (C SDK style) signs differently', () => {
  assert.equal(hmacBase64('key', 'host%2fdevices%2fdevice\n12345'), 'jvZpYSsnHxDN+Yfwq8IddYFTXC7MurwM68QH0Tg31vk=');
  const t = sasToken({ resource: 'host%2fdevices%2fdevice', key: 'key', expiry: 12345, encodeResource: false });
  assert.equal(t, 'SharedAccessSignature sr=host%2fdevices%2fdevice&sig=jvZpYSsnHxDN%2BYfwq8IddYFTXC7MurwM68QH0Tg31vk%3D&se=12345');
});

test('§2 vector: device token for myhub/dev1', () => {
  assert.equal(
    deviceToken('myhub.azure-devices.net', 'dev1', 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=', 1700000000),
    'SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev1&sig=i%2BYmMcSSZc4KzBi6ejz3l0iL%2B2sN0CE3q6vSm837h2g%3D&se=1700000000');
});

test('§2 vector: DPS derived device key', () => {
  assert.equal(
    deriveDeviceKey('8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==', 'sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6'),
    'Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=');
});

test('encodeStrict matches the SDK (incl. lowercase %2a for *)', () => {
  // azure-iot-common as the device SDK resolves it (transitive dependency).
  const { encodeUriComponentStrict } = require('node:module').createRequire(require.resolve('azure-iot-device'))('azure-iot-common');
  for (const s of ["a!b'c(d)e*f", 'host/devices/dev 1', 'ü+=&?#']) {
    assert.equal(encodeStrict(s), encodeUriComponentStrict(s), s);
  }
  assert.equal(encodeStrict('*'), '%2a');
});

test('policy token equals what azure-iothub sends (sr = raw host)', () => {
  const key = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
  const sdk = iothub.SharedAccessSignature.create('localhost', 'iothubowner', key, 1700000000).toString();
  assert.equal(sdk, 'SharedAccessSignature sr=localhost&sig=RwSH3Sy2HXb3ctSoWptFo5Mb2EMQ%2BN4HJSineMcimhs%3D&skn=iothubowner&se=1700000000');
  assert.equal(sasToken({ resource: 'localhost', key, keyName: 'iothubowner', expiry: 1700000000, encodeResource: false }), sdk);
  const live = policyToken('localhost', 'iothubowner', key);
  assert.match(live, /^SharedAccessSignature sr=localhost&sig=[^&]+&skn=iothubowner&se=\d+$/);
});

test('device token equals what azure-iot-device mints (encoded sr, no skn)', () => {
  const key = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
  for (const id of ['dev1', 'dev 1', 'a:b+c@d', "x!y'z(1)*"]) {
    const sdk = deviceSdk.SharedAccessSignature.create('localhost', id, key, 1700000000).toString();
    assert.equal(deviceToken('localhost', id, key, 1700000000), sdk, id);
  }
});

test('connection strings split at the first "="', () => {
  const cs = parseConnectionString('HostName=h;DeviceId=d;SharedAccessKey=abc==;GatewayHostName=localhost:1234');
  assert.deepEqual(cs, { HostName: 'h', DeviceId: 'd', SharedAccessKey: 'abc==', GatewayHostName: 'localhost:1234' });
});

test('the SDK device client takes its MQTT endpoint from GatewayHostName (SharedAccessKey strings only)', async () => {
  const { Mqtt } = require('azure-iot-device-mqtt');
  const provider = deviceSdk.SharedAccessKeyAuthenticationProvider.fromConnectionString(
    'HostName=localhost;DeviceId=dev1;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=;GatewayHostName=localhost:18883');
  const creds = await provider.getDeviceCredentials();
  provider.stop();
  const transport = new Mqtt(provider);
  const cfg = await new Promise((resolve) => transport._ensureAgentString(() => resolve(transport._getBaseTransportConfig(creds))));
  assert.equal(cfg.uri, 'mqtts://localhost:18883');
  assert.equal(cfg.clientId, 'dev1');
  assert.match(cfg.username, /^localhost\/dev1\/\?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F/);
  assert.match(cfg.sharedAccessSignature, /^SharedAccessSignature sr=localhost%2Fdevices%2Fdev1&sig=[^&]+&se=\d+$/);

  // A SharedAccessSignature connection string loses GatewayHostName (SDK-NOTES §0.6).
  const tok = deviceToken('localhost', 'dev1', 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=', 1700000000);
  const sasProvider = deviceSdk.SharedAccessSignatureAuthenticationProvider.fromSharedAccessSignature(tok);
  const sasCreds = await sasProvider.getDeviceCredentials();
  assert.equal(sasCreds.gatewayHostName, undefined);
  assert.equal(sasCreds.host, 'localhost');
});
