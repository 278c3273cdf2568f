#!/usr/bin/env node
// Floor of a cold OVS converge, as a whole process: one OVSDB `transact` request (read from FILE,
// JSON) sent as it is over the database's unix socket, its answer awaited and checked. No client
// library. ovsdb-client cannot send it: a 10,000-port transaction is longer than one
// command-line argument may be (128 KiB).
//   node bench/floors/ovsdb-transact.mjs SOCKET FILE
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';

const [sock, file] = process.argv.slice(2);
const params = JSON.parse(readFileSync(file, 'utf8'));
const s = connect({ path: sock });
const chunks = [];
s.on('connect', () => s.write(JSON.stringify({ method: 'transact', params, id: 1 })));
s.on('data', (b) => {
  chunks.push(b);
  if (b[b.length - 1] !== 0x7d) return; // '}'
  let msg;
  try {
    msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return; // not the whole answer yet
  }
  s.destroy();
  const bad = msg.error ?? (msg.result ?? []).find((r) => r && r.error);
  if (bad) {
    console.error(`transact failed: ${JSON.stringify(bad)}`);
    process.exitCode = 1;
  }
});
s.on('error', (err) => {
  console.error(err.message);
  process.exitCode = 1;
});
