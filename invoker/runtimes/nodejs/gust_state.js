// gust_state: the namespace's state cache for Node.js actions (docs/state.md).
//
//   const state = require('gust_state');
//   await state.set('visits', 0, {ttl: 60});
//   await state.incr('visits');          // -> 1
//
// Every call returns a Promise. Keys get the namespace's prefix
// (GUST_STATE_PREFIX); values are stored as strings and come back as strings,
// or null when absent. One connection to /run/gust/state.sock per sandbox,
// kept; replies are matched to calls in order (Redis answers in order).
'use strict';
const net = require('net');

let sock = null;
let buf = Buffer.alloc(0);
const waiting = [];

class StateError extends Error {}

function pack(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

// Parses one reply at buf[at..]; returns [value, next] or null when incomplete.
function parse(at) {
  const nl = buf.indexOf('\r\n', at);
  if (nl < 0) return null;
  const t = String.fromCharCode(buf[at]);
  const rest = buf.toString('utf8', at + 1, nl);
  if (t === '+') return [rest, nl + 2];
  if (t === '-') return [new StateError(rest), nl + 2];
  if (t === ':') return [Number(rest), nl + 2];
  if (t === '$') {
    const n = Number(rest);
    if (n < 0) return [null, nl + 2];
    if (buf.length < nl + 2 + n + 2) return null;
    return [buf.toString('utf8', nl + 2, nl + 2 + n), nl + 2 + n + 2];
  }
  if (t === '*') {
    const n = Number(rest);
    if (n < 0) return [null, nl + 2];
    const out = [];
    let p = nl + 2;
    for (let i = 0; i < n; i++) {
      const r = parse(p);
      if (r === null) return null;
      out.push(r[0]);
      p = r[1];
    }
    return [out, p];
  }
  throw new StateError('bad reply from the state cache');
}

function connect() {
  sock = net.createConnection(process.env.GUST_STATE_SOCKET || '/run/gust/state.sock');
  sock.setNoDelay && sock.setNoDelay(true);
  sock.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    let at = 0;
    for (;;) {
      const r = parse(at);
      if (r === null) break;
      at = r[1];
      const w = waiting.shift();
      if (w) (r[0] instanceof StateError ? w.reject(r[0]) : w.resolve(r[0]));
    }
    buf = buf.subarray(at);
  });
  const fail = (e) => {
    sock = null;
    buf = Buffer.alloc(0);
    for (const w of waiting.splice(0)) w.reject(e || new StateError('state cache connection closed'));
  };
  sock.on('error', fail);
  sock.on('close', () => fail());
}

function command(...args) {
  if (sock === null) connect();
  return new Promise((resolve, reject) => {
    waiting.push({resolve, reject});
    sock.write(pack(args));
  });
}

const k = (key) => (process.env.GUST_STATE_PREFIX || '') + key;
const px = (ttl) => Math.max(1, Math.round(ttl * 1000));

module.exports = {
  StateError,
  command,
  get: (key) => command('GET', k(key)),
  set: (key, value, opts = {}) =>
    (opts.ttl ? command('SET', k(key), value, 'PX', px(opts.ttl)) : command('SET', k(key), value))
      .then((r) => r === 'OK'),
  delete: (...keys) => command('DEL', ...keys.map(k)),
  incr: (key, by = 1) => command('INCRBY', k(key), by),
  expire: (key, ttl) => command('PEXPIRE', k(key), px(ttl)).then((r) => r === 1),
  // Sets key to next only if it holds expected (null: absent). Resolves true when set.
  // WATCH holds on this connection: concurrent cas calls in one sandbox are serialized.
  cas: (() => {
    let chain = Promise.resolve();
    return (key, expected, next) => {
      const run = async () => {
        await command('WATCH', k(key));
        const cur = await command('GET', k(key));
        if (cur !== (expected === null || expected === undefined ? null : String(expected))) {
          await command('UNWATCH');
          return false;
        }
        const [, , exec] = await Promise.all([command('MULTI'), command('SET', k(key), next),
          command('EXEC')]);
        return Array.isArray(exec);
      };
      const p = chain.then(run, run);
      chain = p.catch(() => {});
      return p;
    };
  })(),
  hget: (key, field) => command('HGET', k(key), field),
  hset: (key, obj) => command('HSET', k(key), ...Object.entries(obj).flat()),
  hgetall: (key) => command('HGETALL', k(key)).then((r) => {
    const o = {};
    for (let i = 0; i < r.length; i += 2) o[r[i]] = r[i + 1];
    return o;
  }),
  hdel: (key, ...fields) => command('HDEL', k(key), ...fields),
  lpush: (key, ...v) => command('LPUSH', k(key), ...v),
  rpush: (key, ...v) => command('RPUSH', k(key), ...v),
  lpop: (key) => command('LPOP', k(key)),
  rpop: (key) => command('RPOP', k(key)),
  lrange: (key, start = 0, stop = -1) => command('LRANGE', k(key), start, stop),
};
