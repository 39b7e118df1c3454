// Gust driven by the official OpenWhisk JavaScript client, unchanged: one
// test per point of the API (namespaces, actions, invoke, packages, triggers
// and rules, activations, web actions, limits).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const openwhisk = require('openwhisk');

const apihost = process.env.GUST_APIHOST;
const ow = openwhisk({ apihost, api_key: process.env.GUST_AUTH });
const other = openwhisk({ apihost, api_key: process.env.GUST_AUTH_OTHER });
const limited = openwhisk({ apihost, api_key: process.env.GUST_AUTH_LIMITED });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function eventually(fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      if (Date.now() > end) throw e;
    }
    if (Date.now() > end) return fn();
    await sleep(200);
  }
}
async function status(p) {
  try {
    await p;
    return 200;
  } catch (e) {
    return e.statusCode;
  }
}

const ECHO = 'function main(p) { return p; }';

// A stored zip with one file (no compression), built by hand: no zip tool needed.
function zipOf(files) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const locals = [], centrals = [];
  let off = 0;
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text), fn = Buffer.from(name), c = crc(data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4); lh.writeUInt32LE(c, 14);
    lh.writeUInt32LE(data.length, 18); lh.writeUInt32LE(data.length, 22); lh.writeUInt16LE(fn.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(20, 4); ch.writeUInt16LE(20, 6); ch.writeUInt32LE(c, 16);
    ch.writeUInt32LE(data.length, 20); ch.writeUInt32LE(data.length, 24); ch.writeUInt16LE(fn.length, 28);
    ch.writeUInt32LE(off, 42);
    locals.push(lh, fn, data);
    centrals.push(ch, fn);
    off += 30 + fn.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10); end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(off, 16);
  return Buffer.concat([...locals, cd, end]);
}

test('1 namespaces: the caller\'s own, with its real name', async () => {
  assert.deepStrictEqual(await ow.namespaces.list(), ['guest']);
});

test('2 actions: create, get, list, update, delete, limits, kinds, zip, sequences', async () => {
  const a = await ow.actions.create({ name: 'hello', action: ECHO, kind: 'nodejs:default', params: { a: 1 } });
  assert.strictEqual(a.version, '0.0.1');
  assert.strictEqual(a.namespace, 'guest');
  const u = await ow.actions.update({ name: 'hello', action: 'function main(p) { return {v: 2, a: p.a}; }' });
  assert.strictEqual(u.version, '0.0.2');
  const g = await ow.actions.get({ name: 'hello' });
  assert.match(g.exec.code, /v: 2/);
  assert.deepStrictEqual(g.parameters, [{ key: 'a', value: 1 }]);
  assert.ok((await ow.actions.list()).some((x) => x.name === 'hello'));
  assert.strictEqual(await status(ow.actions.create({ name: 'hello', action: ECHO })), 409);
  assert.strictEqual(await status(ow.actions.create({ name: 'big', action: ECHO, limits: { memory: 4096 } })), 400);
  assert.strictEqual(await status(ow.actions.create({ name: 'slow', action: ECHO, limits: { timeout: 50 } })), 400);
  await ow.actions.create({ name: 'py', action: 'def main(a):\n    return {"py": a.get("x")}\n', kind: 'python:3' });
  assert.deepStrictEqual(await ow.actions.invoke({ name: 'py', params: { x: 3 }, blocking: true, result: true }), { py: 3 });
  // a zip as the client sends it: a Buffer, base64 on the wire, no binary flag
  const zip = zipOf({ 'package.json': '{"main": "m.js"}', 'm.js': 'exports.main = () => ({zipped: true});' });
  await ow.actions.create({ name: 'zipped', action: zip, kind: 'nodejs:20' });
  assert.deepStrictEqual(await ow.actions.invoke({ name: 'zipped', blocking: true, result: true }), { zipped: true });
  await ow.actions.create({ name: 'inc', action: 'function main(p) { return {n: (p.n || 0) + 1}; }' });
  await ow.actions.create({ name: 'seq', action: { exec: { kind: 'sequence', components: ['/_/inc', '/_/inc', '/_/inc'] } } });
  assert.deepStrictEqual(await ow.actions.invoke({ name: 'seq', params: { n: 1 }, blocking: true, result: true }), { n: 4 });
  await ow.actions.delete({ name: 'big' }).catch(() => {});
  await ow.actions.delete({ name: 'hello' });
  assert.strictEqual(await status(ow.actions.get({ name: 'hello' })), 404);
});

test('3 invoke: blocking, non-blocking, 502 with the record, 413, activation id', async () => {
  await ow.actions.create({ name: 'env', action: 'function main() { return {id: process.env.__OW_ACTIVATION_ID, ns: process.env.__OW_NAMESPACE, name: process.env.__OW_ACTION_NAME}; }' });
  const rec = await ow.actions.invoke({ name: 'env', blocking: true });
  assert.strictEqual(rec.response.result.id, rec.activationId);
  assert.strictEqual(rec.response.result.name, '/guest/env');
  const nb = await ow.actions.invoke({ name: 'env' });
  assert.match(nb.activationId, /^[0-9a-f]{32}$/);
  await ow.actions.create({ name: 'fails', action: 'function main() { return {error: "nope"}; }' });
  try {
    await ow.actions.invoke({ name: 'fails', blocking: true });
    assert.fail('should fail');
  } catch (e) {
    assert.strictEqual(e.statusCode, 502);
    assert.strictEqual(e.error.response.statusCode, 1);
    assert.strictEqual(e.error.response.result.error, 'nope');
  }
  assert.strictEqual(await status(ow.actions.invoke({ name: 'env', params: { big: 'x'.repeat(1100000) }, blocking: true })), 413);
  assert.strictEqual(await status(ow.actions.invoke({ name: 'nope', blocking: true })), 404);
});

test('4 packages: parameters inherited, bindings, 409 on delete with actions', async () => {
  await ow.packages.create({ name: 'utils', package: { publish: true, parameters: [{ key: 'who', value: 'pkg' }, { key: 'x', value: 'pkg' }] } });
  await ow.actions.create({ name: 'utils/echo', action: ECHO, params: { x: 'action' } });
  assert.deepStrictEqual(await ow.actions.invoke({ name: 'utils/echo', params: { y: 'invoke' }, blocking: true, result: true }),
    { who: 'pkg', x: 'action', y: 'invoke' });
  const p = await ow.packages.get({ name: 'utils' });
  assert.deepStrictEqual(p.actions.map((a) => a.name), ['echo']);
  assert.strictEqual(await status(ow.packages.delete({ name: 'utils' })), 409);
  await other.packages.create({ name: 'mine', package: { binding: { namespace: 'guest', name: 'utils' }, parameters: [{ key: 'who', value: 'binding' }] } });
  assert.deepStrictEqual(await other.actions.invoke({ name: 'mine/echo', blocking: true, result: true }), { who: 'binding', x: 'action' });
  await ow.actions.delete({ name: 'utils/echo' });
  await ow.packages.delete({ name: 'utils' });
});

test('5 triggers and rules: fire, enable, disable, caused activations', async () => {
  await ow.actions.create({ name: 'onfire', action: ECHO });
  await ow.triggers.create({ name: 'tick', trigger: { parameters: [{ key: 'from', value: 'trigger' }, { key: 'both', value: 'trigger' }] } });
  assert.strictEqual(await status(ow.triggers.invoke({ name: 'tick' })), 200); // 204: no active rule
  await ow.rules.create({ name: 'tickrule', action: 'onfire', trigger: 'tick' });
  const fired = await ow.triggers.invoke({ name: 'tick', params: { both: 'fire' } });
  assert.match(fired.activationId, /^[0-9a-f]{32}$/);
  const trec = await eventually(() => ow.activations.get({ name: fired.activationId }));
  const caused = JSON.parse(trec.logs[0]).activationId;
  const arec = await eventually(() => ow.activations.get({ name: caused }));
  assert.deepStrictEqual(arec.response.result, { from: 'trigger', both: 'fire' });
  assert.strictEqual(arec.cause, fired.activationId);
  await ow.rules.disable({ name: 'tickrule' });
  assert.strictEqual((await ow.rules.get({ name: 'tickrule' })).status, 'inactive');
  await ow.rules.enable({ name: 'tickrule' });
  await ow.rules.delete({ name: 'tickrule' });
  await ow.triggers.delete({ name: 'tick' });
});

test('6 activations: list with filters, get, logs, result, 404', async () => {
  await ow.actions.create({ name: 'logger', action: 'function main(p) { console.log("hello", p.i); return {i: p.i}; }' });
  let last;
  for (let i = 0; i < 3; i++) last = await ow.actions.invoke({ name: 'logger', params: { i }, blocking: true });
  const list = await eventually(async () => {
    const l = await ow.activations.list({ name: 'logger', limit: 2 });
    return l.length === 2 ? l : null;
  });
  assert.ok(list.every((a) => a.name === 'logger'));
  // The record is stored by the invoker's Redis writer a moment after the
  // blocking answer left (docs/api.md): poll, as a client of OpenWhisk would.
  const logs = await eventually(() => ow.activations.logs({ name: last.activationId }));
  assert.ok(logs.logs.some((l) => l.includes('hello 2')));
  const res = await ow.activations.result({ name: last.activationId });
  assert.deepStrictEqual(res.result, { i: 2 });
  const count = await ow.activations.list({ name: 'logger', count: true });
  assert.strictEqual(count.activations, 3);
  assert.strictEqual(await status(ow.activations.get({ name: '0123456789abcdef0123456789abcdef' })), 404);
});

test('7 web actions: exported, extensions, __ow_ fields, 404 when not exported', async () => {
  await ow.actions.create({
    name: 'page',
    action: 'function main(p) { return {statusCode: 200, headers: {"content-type": "text/plain"}, body: p.__ow_method + " " + p.__ow_path + " " + (p.name || "")}; }',
    annotations: { 'web-export': true },
  });
  let r = await fetch(`${apihost}/api/v1/web/guest/default/page.http/sub?name=web`);
  assert.strictEqual(r.status, 200);
  assert.strictEqual(await r.text(), 'get /sub web');
  r = await fetch(`${apihost}/api/v1/web/guest/default/page.json`);
  assert.strictEqual(r.status, 200);
  await ow.actions.create({ name: 'hidden', action: ECHO });
  r = await fetch(`${apihost}/api/v1/web/guest/default/hidden.json`);
  assert.strictEqual(r.status, 404);
});

test('8 limits: trigger fires per minute answer 429 with a clear message', async () => {
  await limited.triggers.create({ name: 't' });
  await limited.actions.create({ name: 'a', action: ECHO });
  await limited.rules.create({ name: 'r', action: 'a', trigger: 't' });
  const codes = [];
  let message = '';
  for (let i = 0; i < 4; i++) {
    try {
      await limited.triggers.invoke({ name: 't' });
      codes.push(202);
    } catch (e) {
      codes.push(e.statusCode);
      message = JSON.stringify(e.error);
    }
  }
  assert.ok(codes.includes(429), String(codes));
  assert.match(message, /per minute/);
});
