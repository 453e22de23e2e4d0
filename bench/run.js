#!/usr/bin/env node
// `npm run bench`: what the gateway adds to a request, and how fast holds can be placed.
//
// 1. Overhead: a local fake provider that answers at once; the same chat request sent
//    N times straight to it and N times through a gateway process (NEXO_ROLE=all, real
//    PostgreSQL and Redis). The difference of the latency percentiles is the gateway's cost.
// 2. Holds: place + settle one hold in PostgreSQL (nexo_place_hold + nexo_settle, as the
//    gateway does, including the ledger entry and the usage log)
//    versus the same reservation as one Redis Lua script (the alternative design), at a
//    given concurrency on one workspace row (the contended case).
//
// Only loopback addresses are used; every loop is bounded. Options via env:
// BENCH_REQUESTS (default 2000), BENCH_CONCURRENCY (default 32), BENCH_HOLDS (default 4000),
// BENCH_PROFILE=<dir> (CPU profile of the gateway).
'use strict';
const { spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { join } = require('node:path');
const { Client } = require('pg');
const Redis = require('ioredis');
const { Pool } = require('undici');

const root = join(__dirname, '..');
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const HOLDS = Number(process.env.BENCH_HOLDS ?? 4000);
const PG_ADMIN = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const ms = (n) => `${n.toFixed(3)} ms`;

// The fake provider runs in a process of its own, as a real provider would: the direct path
// then pays the same cross-process hop the gateway's upstream call pays.
const FAKE_PROVIDER = `
const { createServer } = require('node:http');
const body = JSON.stringify({
  id: 'chatcmpl-bench', object: 'chat.completion', created: 1, model: 'deepseek-v4-flash',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 20, completion_tokens: 2, total_tokens: 22 },
});
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.send(server.address().port));
process.on('disconnect', () => process.exit(0));
`;

function fakeProvider() {
  const child = spawn(process.execPath, ['-e', FAKE_PROVIDER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (port) => resolve({ port, close: () => child.kill('SIGTERM') }));
    child.once('exit', (code) => reject(new Error(`fake provider exited with ${code}`)));
  });
}

async function load(origin, path, headers, payload, count, concurrency) {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const latencies = [];
  let next = 0;
  let failures = 0;
  const started = performance.now();
  async function worker() {
    while (next < count) {
      next++;
      const t0 = performance.now();
      const res = await pool.request({ method: 'POST', path, headers, body: payload });
      await res.body.arrayBuffer();
      latencies.push(performance.now() - t0);
      if (res.statusCode !== 200) failures++;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return { p50: pct(latencies, 50), p90: pct(latencies, 90), p99: pct(latencies, 99), rps: count / seconds, failures };
}

async function waitReady(url, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/health/ready`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('gateway did not become ready');
}

async function api(url, method, path, body) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function benchOverhead(dbUrl, prefix) {
  const provider = await fakeProvider();
  const providerUrl = `http://127.0.0.1:${provider.port}`;
  const port = 20000 + Math.floor(Math.random() * 20000);
  // BENCH_PROFILE=dir writes a V8 CPU profile of the gateway there
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const gateway = spawn(process.execPath, [...profile, join(root, 'dist/src/main.js')], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      PORT: String(port),
      DATABASE_URL: dbUrl,
      REDIS_URL,
      REDIS_PREFIX: prefix,
      ADMIN_TOKEN,
      NEXO_SEED_DEMO: 'false',
      NEXO_ROLE: process.env.BENCH_ROLE ?? 'all',
      PROVIDER_DEEPSEEK_BASE_URL: `${providerUrl}/v1`,
      PROVIDER_DEEPSEEK_API_KEY: 'sk-bench',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(url, 30_000);
    const ws = await api(url, 'POST', '/admin/workspaces', { name: 'bench' });
    await api(url, 'POST', `/admin/workspaces/${ws.id}/credits`, { amount_micros: 1_000_000_000_000 });
    const key = await api(url, 'POST', `/admin/workspaces/${ws.id}/keys`, { name: 'bench' });
    const payload = JSON.stringify({ model: 'deepseek-v4-flash', messages: [{ role: 'user', content: 'Say ok.' }], max_tokens: 16 });
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key.key}` };
    // warm both paths (JIT, pools, caches)
    await load(providerUrl, '/v1/chat/completions', headers, payload, 300, CONCURRENCY);
    await load(url, '/v1/chat/completions', headers, payload, 300, CONCURRENCY);
    const direct = await load(providerUrl, '/v1/chat/completions', headers, payload, REQUESTS, CONCURRENCY);
    const viaGateway = await load(url, '/v1/chat/completions', headers, payload, REQUESTS, CONCURRENCY);
    const serial = await load(url, '/v1/chat/completions', headers, payload, Math.min(REQUESTS, 500), 1);
    const serialDirect = await load(providerUrl, '/v1/chat/completions', headers, payload, Math.min(REQUESTS, 500), 1);
    return { direct, viaGateway, serial, serialDirect };
  } finally {
    const exited = new Promise((resolve) => gateway.once('exit', resolve));
    gateway.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    provider.close();
  }
}

const LUA_HOLD = `
local available = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(redis.call('GET', KEYS[2]) or '0')
local amount = tonumber(ARGV[1])
if available < amount then return 0 end
redis.call('INCRBY', KEYS[2], amount)
redis.call('SET', KEYS[3], amount, 'EX', 900)
return 1`;
const LUA_SETTLE = `
local held = redis.call('GET', KEYS[3])
if not held then return 0 end
redis.call('DEL', KEYS[3])
redis.call('DECRBY', KEYS[2], held)
redis.call('DECRBY', KEYS[1], ARGV[1])
return 1`;

async function benchHolds(dbUrl, prefix) {
  const clients = await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      const c = new Client({ connectionString: dbUrl });
      await c.connect();
      return c;
    }),
  );
  const [{ id: ws }] = (
    await clients[0].query(`INSERT INTO workspaces (name, balance_micros) VALUES ('holds', 1000000000000) RETURNING id`)
  ).rows;
  const [{ id: key }] = (
    await clients[0].query(
      `INSERT INTO api_keys (workspace_id, name, key_hash, prefix, last_four) VALUES ($1, 'k', $2, 'p', 'l') RETURNING id`,
      [ws, randomBytes(16).toString('hex')],
    )
  ).rows;
  let n = 0;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      while (n < HOLDS) {
        const id = `bench_${n++}`;
        await c.query('SELECT * FROM nexo_place_hold($1, $2, $3, $4, 900, $5)', [id, ws, key, 1000, 'm']);
        await c.query('SELECT * FROM nexo_settle($1, $2, $3, $4, $5, 10, 5, 500, $6, 200, NULL, 1, false, now())', [
          id,
          ws,
          key,
          'm',
          'p',
          'provider',
        ]);
      }
    }),
  );
  const pgSeconds = (performance.now() - t0) / 1000;
  await Promise.all(clients.map((c) => c.end()));

  const redisClients = Array.from({ length: CONCURRENCY }, () => new Redis(REDIS_URL));
  const k = (s) => `${prefix}:holdbench:${s}`;
  await redisClients[0].set(k('balance'), 1_000_000_000_000);
  let m = 0;
  const t1 = performance.now();
  await Promise.all(
    redisClients.map(async (r) => {
      while (m < HOLDS) {
        const id = k(`hold:${m++}`);
        await r.eval(LUA_HOLD, 3, k('balance'), k('held'), id, 1000);
        await r.eval(LUA_SETTLE, 3, k('balance'), k('held'), id, 500);
      }
    }),
  );
  const redisSeconds = (performance.now() - t1) / 1000;
  const keys = await redisClients[0].keys(`${prefix}:holdbench:*`);
  if (keys.length) await redisClients[0].del(...keys);
  redisClients.forEach((r) => r.disconnect());
  return { pg: HOLDS / pgSeconds, redis: HOLDS / redisSeconds };
}

async function main() {
  const name = `nexo_bench_${Date.now().toString(36)}`;
  const prefix = `nexobench-${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: PG_ADMIN });
  await admin.connect();
  const dbUrl = (() => {
    const u = new URL(PG_ADMIN);
    u.pathname = `/${name}`;
    return u.toString();
  })();
  try {
    const { loadConfig } = require(join(root, 'dist/src/config/app-config.js'));
    const { migrateDatabase } = require(join(root, 'dist/src/database/prepare-database.js'));
    await migrateDatabase(loadConfig({ NODE_ENV: 'test', DATABASE_URL: dbUrl }));

    console.log(`Gateway overhead: ${REQUESTS} chat completions, concurrency ${CONCURRENCY}, provider answering at once`);
    const o = await benchOverhead(dbUrl, prefix);
    const row = (label, r) =>
      console.log(
        `  ${label.padEnd(26)} p50 ${ms(r.p50)}  p90 ${ms(r.p90)}  p99 ${ms(r.p99)}  ${r.rps.toFixed(0)} req/s${r.failures ? `  (${r.failures} non-200)` : ''}`,
      );
    row('direct to provider', o.direct);
    row('through the gateway', o.viaGateway);
    row('direct, one at a time', o.serialDirect);
    row('gateway, one at a time', o.serial);
    console.log(
      `  added latency, one at a time: p50 ${ms(o.serial.p50 - o.serialDirect.p50)}, p99 ${ms(o.serial.p99 - o.serialDirect.p99)}`,
    );
    console.log(
      `  added latency, concurrency ${CONCURRENCY}: p50 ${ms(o.viaGateway.p50 - o.direct.p50)}, p99 ${ms(o.viaGateway.p99 - o.direct.p99)}`,
    );

    console.log(`\nHolds on one workspace (place + settle), ${HOLDS} of them, concurrency ${CONCURRENCY}`);
    const h = await benchHolds(dbUrl, prefix);
    console.log(`  PostgreSQL conditional update (used): ${h.pg.toFixed(0)} holds/s`);
    console.log(`  Redis Lua script (alternative):       ${h.redis.toFixed(0)} holds/s`);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
