'use strict';
// SAS token minting exactly as the official Node SDKs do it (reference §2,
// SDK-NOTES.md §1.1 and §2.1). No dependency on the SDKs so it can be
// cross-checked against them.
const crypto = require('node:crypto');

// encodeURIComponent plus !'()* — the SDK's encodeUriComponentStrict
// (azure-iot-common/dist/authorization.js): '%' + charCode.toString(16), so
// '*' becomes lowercase '%2a'.
function encodeStrict(str) {
  return encodeURIComponent(str).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16));
}

function hmacBase64(keyBase64, stringToSign) {
  return crypto.createHmac('sha256', Buffer.from(keyBase64, 'base64')).update(stringToSign).digest('base64');
}

// resource: the resource URI (decoded), encoded with encodeStrict unless
// encodeResource is false (the service SDK sends the host name raw).
// Field order sr, sig, [skn], se — the SDK's SharedAccessSignature.toString order.
function sasToken({ resource, key, expiry, keyName, encodeResource = true }) {
  if (!resource || !key || !expiry) throw new Error('resource, key and expiry are required');
  const sr = encodeResource ? encodeStrict(resource) : resource;
  const sig = encodeStrict(hmacBase64(key, sr + '\n' + expiry));
  let token = `SharedAccessSignature sr=${sr}&sig=${sig}`;
  if (keyName) token += `&skn=${encodeStrict(keyName)}`;
  token += `&se=${expiry}`;
  return token;
}

function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

// Policy token for the service REST API (and the emulator-only endpoints):
// sr = raw host name, skn = policy, like azure-iothub.
function policyToken(hostName, keyName, key, ttlSeconds = 3600) {
  return sasToken({ resource: hostName, key, keyName, expiry: nowSeconds() + ttlSeconds, encodeResource: false });
}

// Device token like azure-iot-device: sr = encodeStrict(host/devices/id).
function deviceToken(hostName, deviceId, key, expiry) {
  return sasToken({ resource: `${hostName}/devices/${deviceId}`, key, expiry });
}

// Connection strings: split on ';', each element at the FIRST '=' (§1).
function parseConnectionString(cs) {
  const out = {};
  for (const part of String(cs).split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

// DPS group enrollment derived key (§2).
function deriveDeviceKey(groupKeyBase64, registrationId) {
  return hmacBase64(groupKeyBase64, registrationId);
}

module.exports = {
  encodeStrict,
  hmacBase64,
  sasToken,
  policyToken,
  deviceToken,
  parseConnectionString,
  deriveDeviceKey,
  nowSeconds,
};
