#!/usr/bin/env node
'use strict';
// Entry point of `npm test`.
//
// The SDKs trust the emulator's private CA only through NODE_EXTRA_CA_CERTS,
// which Node reads once at process start. So, before any test process starts:
//   1. start the emulator once with a throw-away state dir: it generates its
//      TLS material (CA + server cert) into <state-dir>/tls/ and prints ca_file;
//   2. stop it;
//   3. run `node --test` with NODE_EXTRA_CA_CERTS=<that ca.pem> and
//      IOTHUB_CONFORMANCE_TLS_DIR=<that tls/ folder>; every test file starts
//      its own emulator with a fresh state dir into which the harness copies
//      that tls/ folder, so the emulator reuses the same CA.
// If NODE_EXTRA_CA_CERTS and IOTHUB_CONFORMANCE_TLS_DIR are both already set,
// step 1-2 are skipped. Extra arguments go to `node --test` (file names,
// --test-name-pattern=..., ...).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { startEmulator, emulatorPath } = require('./lib/harness');

async function bootstrapCa(env) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iothub-conformance-ca-'));
  const stateDir = path.join(tmp, 'state');
  const emu = await startEmulator('bootstrap', { stateDir, tlsDir: null, checkCa: false, keepStateDir: true });
  const caFile = emu.info.ca_file;
  await emu.stop({ keepStateDir: true });
  const tlsDir = path.join(stateDir, 'tls');
  if (!fs.existsSync(tlsDir)) throw new Error(`the emulator did not create ${tlsDir}`);
  if (!path.resolve(caFile).startsWith(tlsDir + path.sep)) {
    console.error(`run.js: warning: ca_file ${caFile} is not inside ${tlsDir}; the harness copies only tls/`);
  }
  const caCopy = path.join(tmp, 'ca.pem');
  fs.copyFileSync(caFile, caCopy);
  env.NODE_EXTRA_CA_CERTS = caCopy;
  env.IOTHUB_CONFORMANCE_TLS_DIR = tlsDir;
  console.error(`run.js: CA bootstrapped: NODE_EXTRA_CA_CERTS=${caCopy}`);
  return tmp;
}

async function main() {
  const passThrough = process.argv.slice(2);
  const env = { ...process.env };
  let tmp;
  if (!(env.NODE_EXTRA_CA_CERTS && env.IOTHUB_CONFORMANCE_TLS_DIR)) {
    try {
      tmp = await bootstrapCa(env);
    } catch (err) {
      console.error(`run.js: could not bootstrap the emulator CA (${emulatorPath()}): ${err.message}`);
      console.error('run.js: running the suite anyway: offline tests run, emulator-backed files fail in their before() hook.');
    }
  }
  const hasFiles = passThrough.some((a) => !a.startsWith('-'));
  const args = [
    '--test',
    '--test-concurrency=1', // one emulator at a time: they all bind port 443
    '--test-timeout=300000', // no single test may run longer than 5 minutes
    '--test-force-exit', // a leaked handle must not keep a file's process alive
    ...passThrough,
    ...(hasFiles ? [] : ['.']),
  ];
  const child = spawn(process.execPath, args, { cwd: __dirname, env, stdio: 'inherit' });
  const forward = (sig) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (code, signal) => {
    if (tmp && !process.env.IOTHUB_CONFORMANCE_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(code === null ? (signal ? 1 : 0) : code);
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
