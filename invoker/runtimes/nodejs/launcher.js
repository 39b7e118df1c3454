'use strict';
/*
 * Gust's Node.js runtime: speaks the action-loop protocol of invoker/sandbox.h.
 *
 * stdin  one JSON message per line: {"init": {...}} or {"value": {...}, "env": {...}}
 * fd 3   one JSON line per message: {"ok": true}, the action's result, or {"error": ...}
 * stdout/stderr  the action's logs, written before the answer on fd 3: the
 *                answer closes the activation's logs (no sentinel lines).
 *
 * Node core only. stdout and stderr are made blocking (see whenFlushed), so
 * the answer can never overtake the action's own output.
 */
const fs = require('fs');
const path = require('path');
const Module = require('module');

// require('gust_state') finds the built-in state module next to us.
process.env.NODE_PATH = __dirname + (process.env.NODE_PATH ? ':' + process.env.NODE_PATH : '');
Module._initPaths();

const ACTION_DIR = '/tmp/action';
const IDENT = /^[A-Za-z_$][\w$]*$/;

let actionMain = null;
let concurrency = 1; // > 1: runs overlap, answers carry their activation id
let runEnv = []; // env keys set by the previous activation

function writeAll(fd, text) {
  // The string goes straight to write(2); a Buffer only for a short write.
  const sent = fs.writeSync(fd, text);
  const len = Buffer.byteLength(text);
  if (sent === len) return;
  const buf = Buffer.from(text, 'utf8');
  for (let off = sent; off < len; ) off += fs.writeSync(fd, buf, off, len - off);
}

/* An uncaught exception: its {"error"} goes out after "!", a developer error
 * (invoker/sandbox.h). A promise rejected with a value that is not an Error is
 * the action's own answer (OpenWhisk: reject({...}) is an application error). */
class Thrown {
  constructor(obj) {
    this.obj = obj;
  }
}

function reply(obj, id) {
  let mark = id === undefined ? '' : `${id} `;
  if (obj instanceof Thrown) {
    mark += '!';
    obj = obj.obj;
  }
  let text;
  try {
    text = JSON.stringify(obj);
  } catch (e) {
    text = JSON.stringify({ error: `The action returned a value that is not JSON: ${e.message}` });
  }
  // JSON.stringify(undefined) is undefined: send null, which the invoker reports
  // as "did not return a dictionary".
  writeAll(3, mark + (text === undefined ? 'null' : text) + '\n');
}

function describe(e) {
  if (e instanceof Error) return e.message || e.name;
  return e;
}

function setEnv(env) {
  for (const [k, v] of Object.entries(env || {})) {
    process.env[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
}

/* A minimal zip reader: the central directory, stored and deflated entries. */
function unzip(data, dir) {
  let eocd = -1;
  for (let i = data.length - 22; i >= Math.max(0, data.length - 65557); i--) {
    if (data.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip file');
  const count = data.readUInt16LE(eocd + 10);
  let p = data.readUInt32LE(eocd + 16);
  const root = path.resolve(dir);
  for (let n = 0; n < count; n++) {
    if (data.readUInt32LE(p) !== 0x02014b50) throw new Error('bad zip central directory');
    const method = data.readUInt16LE(p + 10);
    const csize = data.readUInt32LE(p + 20);
    const nameLen = data.readUInt16LE(p + 28);
    const extraLen = data.readUInt16LE(p + 30);
    const commentLen = data.readUInt16LE(p + 32);
    const local = data.readUInt32LE(p + 42);
    const name = data.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;

    const dest = path.resolve(root, name);
    if (dest !== root && !dest.startsWith(root + path.sep)) throw new Error(`bad zip entry name: ${name}`);
    if (name.endsWith('/')) {
      fs.mkdirSync(dest, { recursive: true });
      continue;
    }
    if (data.readUInt32LE(local) !== 0x04034b50) throw new Error('bad zip local header');
    const start = local + 30 + data.readUInt16LE(local + 26) + data.readUInt16LE(local + 28);
    const raw = data.subarray(start, start + csize);
    let body;
    if (method === 0) body = raw;
    else if (method === 8) body = require('zlib').inflateRawSync(raw);
    else throw new Error(`unsupported zip compression method ${method} for ${name}`);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, body);
  }
}

function loadZip(code, name) {
  fs.mkdirSync(ACTION_DIR, { recursive: true });
  unzip(Buffer.from(code, 'base64'), ACTION_DIR);
  let file = path.join(ACTION_DIR, 'index.js');
  const pkgPath = path.join(ACTION_DIR, 'package.json');
  if (fs.existsSync(pkgPath)) {
    const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
    if (pkg.main) file = path.resolve(ACTION_DIR, pkg.main);
  }
  const mod = require(file);
  if (mod && typeof mod[name] === 'function') return mod[name];
  if (typeof mod === 'function' && name === 'main') return mod;
  return null;
}

/* Compiles plain code as a CommonJS module: main may be a top-level function
 * or an export. The appended line reads the top-level binding, if any. */
function loadSource(code, name) {
  const file = path.join(ACTION_DIR, 'index.js');
  const m = new Module(file, null);
  m.filename = file;
  m.paths = Module._nodeModulePaths(ACTION_DIR);
  const probe = `\n;module.exports.__gust_main = typeof ${name} === 'function' ? ${name} : undefined;\n`;
  m._compile(code + probe, file);
  const exp = m.exports;
  if (exp && typeof exp[name] === 'function') return exp[name];
  if (exp && typeof exp.__gust_main === 'function') return exp.__gust_main;
  if (typeof exp === 'function' && name === 'main') return exp;
  return null;
}

function init(msg) {
  if (actionMain) return { error: 'Cannot initialize the action more than once.' };
  setEnv(msg.env);
  const name = msg.main || 'main';
  if (!IDENT.test(name)) return { error: `Invalid function name '${name}'.` };
  let fn;
  try {
    fn = msg.binary ? loadZip(msg.code || '', name) : loadSource(msg.code || '', name);
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    return { error: `Initialization has failed due to: ${e instanceof Error ? e.message : e}` };
  }
  if (!fn) return { error: `The action has no function named '${name}'.` };
  actionMain = fn;
  if (Number.isInteger(msg.concurrency) && msg.concurrency > 1) concurrency = msg.concurrency;
  return { ok: true };
}

/* What an uncaught exception or a rejection becomes. */
function failed(e) {
  console.error(e && e.stack ? e.stack : String(e));
  return e instanceof Error ? new Thrown({ error: describe(e) }) : { error: describe(e) };
}

/* The action's answer, or a Promise of it when the action returned one: a
 * synchronous action is answered without a trip through the microtask queue. */
function run(msg) {
  if (!actionMain) return { error: 'not initialized' };
  // With concurrent runs process.env is shared: it holds the latest run's
  // values (as in OpenWhisk's Node.js runtime).
  if (concurrency === 1) for (const k of runEnv) delete process.env[k];
  runEnv = msg.env ? Object.keys(msg.env) : [];
  setEnv(msg.env);
  try {
    const out = actionMain(msg.value || {});
    if (out !== null && (typeof out === 'object' || typeof out === 'function') && typeof out.then === 'function')
      return Promise.resolve(out).catch(failed);
    return out;
  } catch (e) {
    return failed(e);
  }
}

function handle(line) {
  let msg;
  try {
    msg = JSON.parse(line);
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('not an object');
  } catch (e) {
    return { error: `bad message: ${e.message}` };
  }
  return 'init' in msg ? init(msg.init || {}) : run(msg);
}

function isPromise(v) {
  return v instanceof Promise;
}

/* The answer on fd 3 ends the activation's logs (invoker/sandbox.h), so every
 * log byte must be in its pipe first. libuv writes to a pipe what fits and
 * queues the rest for the event loop: a big console.log could still be in
 * our memory when a synchronous action's answer goes out. Blocking writes
 * keep the order (console.log waits while the invoker reads the pipe, which
 * it does while it waits for the answer); whenFlushed covers any stream that
 * still queues, e.g. one an action replaced. */
for (const s of [process.stdout, process.stderr]) {
  if (s._handle && typeof s._handle.setBlocking === 'function') s._handle.setBlocking(true);
}

function whenFlushed(fn) {
  const out = process.stdout;
  const err = process.stderr;
  if (!out.writableLength && !err.writableLength) return fn();
  (out.writableLength ? out : err).once('drain', () => whenFlushed(fn));
}

// Lines from stdin without readline's async iterator, which costs more than
// the rest of a warm activation: chunks are split here. One run at a time:
// lines that come while a run is in progress wait their turn.
function loop() {
  let pending = '';
  const waiting = [];
  let busy = false;
  let ending = false; // stdin closed: exit once the last run has answered
  const next = () => {
    busy = false;
    if (waiting.length > 0) serve(waiting.shift());
    else if (ending) process.exit(0);
  };
  const finish = (v) =>
    whenFlushed(() => {
      reply(v);
      next();
    });
  const serve = (line) => {
    busy = true;
    const r = handle(line);
    // A synchronous answer still waits one microtask, as an await would:
    // what the action queued before returning (a log from a resolved
    // promise) runs first and is this activation's.
    if (isPromise(r)) r.then(finish);
    else queueMicrotask(() => finish(r));
  };
  const onLine = (line) => {
    if (concurrency > 1) {
      // Concurrent mode (invoker/sandbox_mux.c): do not wait; tag the answer
      // with the activation id; logs are not per activation.
      let id = '';
      try {
        id = JSON.parse(line).env.__OW_ACTIVATION_ID || '';
      } catch (e) {}
      Promise.resolve(handle(line)).then((r) => reply(r, id));
      return;
    }
    if (busy) waiting.push(line);
    else serve(line);
  };
  process.stdin.setEncoding('utf8');
  // Only the new chunk is searched: an init of many megabytes arrives in
  // many chunks, and rescanning what is pending would be quadratic.
  process.stdin.on('data', (chunk) => {
    let start = 0;
    let i;
    while ((i = chunk.indexOf('\n', start)) >= 0) {
      const line = pending + chunk.slice(start, i);
      pending = '';
      start = i + 1;
      if (line.length > 0) onLine(line);
    }
    pending += chunk.slice(start);
  });
  process.stdin.on('end', () => {
    ending = true;
    if (!busy && waiting.length === 0) process.exit(0);
  });
}

loop();
