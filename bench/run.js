#!/usr/bin/env node
// `npm run bench`: what a gateway adds to a request, side by side in one run, and how fast
// one workspace's holds and settlements are applied in PostgreSQL. See bench/README.md.
//
// Targets, each in a process of its own, all in front of one fake provider process that
// answers at once:
//   provider   the provider directly (the floor of the floor)
//   bare       a bare undici proxy (bench/bare-proxy.js): the floor of any Node.js gateway
//   portkey    the Portkey gateway (@portkey-ai/gateway, headless, production), routed with
//              x-portkey-provider: openai and x-portkey-custom-host
//   nexo       NexoRouter in production mode (NEXO_ROLE=all: API and workers in one process;
//              BENCH_SPLIT=1: a NEXO_ROLE=api and a NEXO_ROLE=worker process), with a
//              model-scoped, rate-limited key: auth, scope, hold, rate limit and usage logging all on
//
// Measured: added latency one request at a time (targets interleaved, minus the provider's
// own), throughput at 16 and 64 connections (autocannon, a fixed number of requests), CPU
// time per request of every NexoRouter process (from /proc, until what a round answered is
// settled), peak RSS (of its processes together), and holds plus
// settlements per second on one workspace from two processes (last, the targets stopped). It
// checks that every request NexoRouter answered was charged exactly once.
//
// Loopback only; every loop is bounded. Env: BENCH_REQUESTS (per target and connection
// count, default 4000), BENCH_WARMUP (requests per target before measuring, default BENCH_REQUESTS),
// BENCH_ROUNDS (throughput rounds, targets interleaved, and rounds of leased holds; medians
// reported; default 3),
// BENCH_SERIAL (requests per target one at a time, default 600),
// BENCH_HOLDS (default 10000 per process), BENCH_PROFILE=<dir> (a V8 CPU profile of NexoRouter).
// `--serve` starts the targets, prints their addresses and pids, and waits for Ctrl-C; `--holds`
// runs only the holds-and-settlements step.
'use strict';
const { fork, spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const autocannon = require('autocannon');
const { Client } = require('pg');
const Redis = require('ioredis');
const { Pool } = require('undici');

const root = join(__dirname, '..');
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 4000);
const SERIAL = Number(process.env.BENCH_SERIAL ?? 600);
const WARMUP = Number(process.env.BENCH_WARMUP ?? REQUESTS);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const HOLDS = Number(process.env.BENCH_HOLDS ?? 10000);
const PG_ADMIN = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_TOKEN = randomBytes(24).toString('hex');
const PROVIDER_KEY = 'sk-bench-provider';
const CLOCK_TICK_MS = 10; // USER_HZ is 100 on Linux
const SERVE = process.argv.includes('--serve');
const HOLDS_ONLY = process.argv.includes('--holds');

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const fmt = (n, digits = 3) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The fake provider runs in a process of its own, as a real provider would: the direct path
// then pays the same cross-process hop as every gateway's upstream call.
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

/** A child that reports its port over IPC. */
function portReporter(args, options = {}) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...options });
  return new Promise((resolve, reject) => {
    child.once('message', (port) => resolve({ proc: child, origin: `http://127.0.0.1:${port}` }));
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
}

async function waitHttp(url, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`${url} did not answer`);
}

async function freePort() {
  const { createServer } = require('node:net');
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

async function startPortkey(providerOrigin) {
  const port = await freePort();
  const proc = spawn(process.execPath, [require.resolve('@portkey-ai/gateway/build/start-server.js'), `--port=${port}`, '--headless'], {
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const origin = `http://127.0.0.1:${port}`;
  await waitHttp(`${origin}/`, 30_000);
  return {
    proc,
    origin,
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${PROVIDER_KEY}`,
      'x-portkey-provider': 'openai',
      'x-portkey-custom-host': `${providerOrigin}/v1`,
    },
  };
}

async function startNexo(dbUrl, prefix, providerOrigin) {
  const port = await freePort();
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const split = process.env.BENCH_SPLIT === '1';
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    PORT: String(port),
    DATABASE_URL: dbUrl,
    REDIS_URL,
    REDIS_PREFIX: prefix,
    ADMIN_TOKEN,
    JWT_SECRET: randomBytes(32).toString('hex'),
    NEXO_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    NEXO_ROLE: split ? 'api' : 'all',
    LOG_LEVEL: 'warn',
    ACCESS_LOG: 'false',
    PROVIDER_DEEPSEEK_BASE_URL: `${providerOrigin}/v1`,
    PROVIDER_DEEPSEEK_API_KEY: PROVIDER_KEY,
  };
  const proc = spawn(process.execPath, [...profile, join(root, 'dist/src/main.js')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const worker = split
    ? spawn(process.execPath, [join(root, 'dist/src/main.js')], {
        env: { ...env, NEXO_ROLE: 'worker' },
        stdio: ['ignore', 'ignore', 'inherit'],
      })
    : null;
  const origin = `http://127.0.0.1:${port}`;
  await waitHttp(`${origin}/health/ready`, 60_000);
  const admin = async (method, path, body) => {
    const res = await fetch(`${origin}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const ws = await admin('POST', '/admin/workspaces', { name: 'bench' });
  await admin('POST', `/admin/workspaces/${ws.id}/credits`, { amount_micros: 1_000_000_000_000, reason: 'bench' });
  // scoped and rate-limited (limits far above what the bench sends): every check runs
  const key = await admin('POST', `/admin/workspaces/${ws.id}/keys`, {
    name: 'bench',
    models: ['deepseek-v4-flash'],
    rpm_limit: 10_000_000,
    tpm_limit: 2_000_000_000,
  });
  return {
    proc,
    worker,
    origin,
    workspaceId: ws.id,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key.key}` },
  };
}

/** CPU ms (user + system) and peak RSS (MB) of a target's processes together, from /proc. */
function procStats(procs) {
  let cpuMs = 0;
  let peakRssMb = 0;
  for (const { pid } of procs) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    cpuMs += (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS;
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    peakRssMb += hwm ? Number(hwm[1]) / 1024 : NaN;
  }
  return { cpuMs, peakRssMb };
}

const PAYLOAD = JSON.stringify({ model: 'deepseek-v4-flash', messages: [{ role: 'user', content: 'Say ok.' }], max_tokens: 16 });

function cannon(target, connections, amount) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `${target.origin}/v1/chat/completions`,
        method: 'POST',
        headers: target.headers,
        body: PAYLOAD,
        connections,
        amount,
        timeout: 30,
        // autocannon calls back only on its sampling tick: at the default 1 s, a run of 4 s
        // reads as 4 or 5 s, and requests per second come out in steps of 20 %
        sampleInt: 10,
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
}

/** One request at a time to every target in turn (a new order each round), so drift hits all alike. */
async function serialLatency(targets, rounds) {
  const pools = new Map(targets.map((t) => [t.name, new Pool(t.origin, { connections: 1, pipelining: 1 })]));
  const samples = new Map(targets.map((t) => [t.name, []]));
  const failures = new Map(targets.map((t) => [t.name, 0]));
  for (let i = 0; i < rounds; i++) {
    const order = [...targets].sort(() => Math.random() - 0.5);
    for (const t of order) {
      const t0 = performance.now();
      const res = await pools.get(t.name).request({ method: 'POST', path: '/v1/chat/completions', headers: t.headers, body: PAYLOAD });
      await res.body.arrayBuffer();
      samples.get(t.name).push(performance.now() - t0);
      if (res.statusCode !== 200) failures.set(t.name, failures.get(t.name) + 1);
    }
  }
  await Promise.all([...pools.values()].map((p) => p.close()));
  const out = {};
  for (const t of targets) {
    const s = samples.get(t.name).sort((a, b) => a - b);
    out[t.name] = { p50: pct(s, 50), p99: pct(s, 99), failures: failures.get(t.name) };
  }
  return out;
}

// ---- holds and settlements on one workspace, from two processes ----

function connectAll(dbUrl, count) {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const c = new Client({ connectionString: dbUrl });
      await c.connect();
      return c;
    }),
  );
}

/** In a holds worker: once connected, tells the parent and waits for its go (process start is not timed). */
function ready() {
  return new Promise((resolve) => {
    process.once('message', resolve);
    process.send('ready');
  });
}

async function holdsWorker(dbUrl, ws, key, count, concurrency) {
  const clients = await connectAll(dbUrl, concurrency);
  await ready();
  const tag = randomBytes(4).toString('hex');
  let n = 0;
  await Promise.all(
    clients.map(async (c) => {
      while (n < count) {
        const id = `bench_${tag}_${n++}`;
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
  await Promise.all(clients.map((c) => c.end()));
}

// What the gateway does in PostgreSQL per request with escrow leases: the request is held in
// memory against a lease (taken once, topped up as it runs low), the requests in flight are traced
// in one row per flush (deleted once handed over), and settlements are applied in batches of the
// batcher's MAX_BATCH (nexo_settle_leased), as the worker does.
async function leasedWorker(dbUrl, ws, key, count, concurrency) {
  // as many as the gateway's settlement batcher writes in one transaction
  const { MAX_BATCH: BATCH } = require(join(root, 'dist/src/billing/settlement/settlement-batcher.js'));
  const clients = await connectAll(dbUrl, concurrency);
  const [leasing] = await connectAll(dbUrl, 1);
  await ready();
  const tag = randomBytes(4).toString('hex');
  const owner = `bench-${tag}`;
  const take = async (leaseId) =>
    (await leasing.query('SELECT * FROM nexo_lease_take($1, $2, $3, $4, $5, 10000)', [leaseId, ws, owner, 10_000_000, 1000])).rows[0];
  let lease = await take(null);
  let free = Number(lease.amount);
  const HOLD = 1000;
  let n = 0;
  await Promise.all(
    clients.map(async (c) => {
      while (n < count) {
        const items = [];
        while (items.length < BATCH && n < count) {
          if (free < HOLD) {
            lease = await take(lease.lease_id);
            free += Number(lease.granted);
            continue;
          }
          free -= HOLD;
          const id = `bench_${tag}_${n++}`;
          items.push({
            requestId: id,
            workspaceId: ws,
            keyId: key,
            model: 'm',
            provider: 'p',
            promptTokens: 10,
            completionTokens: 5,
            costMicros: 500,
            usageSource: 'provider',
            status: 200,
            errorCode: null,
            latencyMs: 1,
            stream: false,
            createdAt: Date.now(),
            attempts: 1,
            leaseId: lease.lease_id,
            holdMicros: HOLD,
          });
        }
        // the requests in flight are traced in one row per flush, deleted once they are handed over
        const trace = await c.query(`INSERT INTO lease_traces (lease_id, workspace_id, requests) VALUES ($1, $2, $3) RETURNING id`, [
          lease.lease_id,
          ws,
          JSON.stringify(items.map((i) => ({ r: i.requestId, k: key, m: 'm', c: i.createdAt }))),
        ]);
        await c.query('SELECT * FROM nexo_settle_leased($1::jsonb)', [JSON.stringify(items)]);
        await c.query('DELETE FROM lease_traces WHERE id = $1', [trace.rows[0].id]);
      }
    }),
  );
  await Promise.all([...clients, leasing].map((c) => c.end()));
}

async function benchHolds(dbUrl, leased) {
  const c = new Client({ connectionString: dbUrl });
  await c.connect();
  // each round starts from the same state: what the steps before left to clean up (dead rows of
  // tens of thousands of settlements, dirty buffers) is not charged to it
  await c.query('CHECKPOINT');
  await c.query('VACUUM (ANALYZE) workspaces, api_keys, holds, leases, lease_traces, ledger_entries, usage_logs, usage_daily');
  const [{ id: ws }] = (await c.query(`INSERT INTO workspaces (name, balance_micros) VALUES ('holds', 1000000000000) RETURNING id`)).rows;
  const [{ id: key }] = (
    await c.query(`INSERT INTO api_keys (workspace_id, name, key_hash, prefix, last_four) VALUES ($1, 'k', $2, 'p', 'l') RETURNING id`, [
      ws,
      randomBytes(16).toString('hex'),
    ])
  ).rows;
  await c.end();
  // both workers connected before the clock starts: a process's start is not a hold
  const workers = [0, 1].map(() => {
    const child = fork(__filename, [leased ? '--leased-worker' : '--holds-worker', dbUrl, ws, key, String(HOLDS), leased ? '4' : '16'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise((resolve, reject) =>
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`holds worker exited with ${code}`)))),
    );
    const isReady = new Promise((resolve, reject) => {
      child.once('message', resolve);
      exited.catch(reject);
    });
    return { child, exited, isReady };
  });
  await Promise.all(workers.map((w) => w.isReady));
  const t0 = performance.now();
  for (const w of workers) w.child.send('go');
  await Promise.all(workers.map((w) => w.exited));
  return (2 * HOLDS) / ((performance.now() - t0) / 1000);
}

/**
 * Holds and settlements per second with escrow leases: the median of ROUNDS rounds (a round takes
 * seconds, and PostgreSQL's pace on a shared machine moves from one to the next).
 */
async function leasedHoldsPerSecond(dbUrl) {
  const rounds = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push(await benchHolds(dbUrl, true));
  return pct(
    rounds.sort((a, b) => a - b),
    50,
  );
}

/** Stops the targets (SIGTERM) and waits until each has exited, 15 s at most. */
function stopAll(procs) {
  return Promise.all(
    procs.map(
      (p) =>
        new Promise((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          const timer = setTimeout(resolve, 15_000);
          p.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          p.kill('SIGTERM');
        }),
    ),
  );
}

// ---- exactly-once check ----

async function waitSettled(dbUrl, workspaceId, answered) {
  const c = new Client({ connectionString: dbUrl });
  await c.connect();
  try {
    const deadline = Date.now() + 120_000;
    let row;
    for (;;) {
      row = (
        await c.query(
          `SELECT (SELECT count(*) FROM usage_logs WHERE workspace_id = $1 AND status = 200)::int AS logged,
                  (SELECT count(*) FROM usage_logs WHERE workspace_id = $1)::int AS logs,
                  (SELECT COALESCE(sum(cost_micros), 0) FROM usage_logs WHERE workspace_id = $1)::bigint AS logged_cost,
                  (SELECT COALESCE(-sum(amount_micros), 0) FROM ledger_entries WHERE workspace_id = $1 AND kind = 'charge')::bigint AS charged,
                  (SELECT count(*) FROM ledger_entries WHERE workspace_id = $1 AND kind = 'charge')::int AS charges,
                  (SELECT 1000000000000 - balance_micros FROM workspaces WHERE id = $1)::bigint AS spent,
                  -- held by requests: holds of their own, and what requests still use of escrow leases
                  (SELECT held_micros - COALESCE((SELECT sum(amount_micros - in_use_micros) FROM leases
                                                   WHERE workspace_id = $1 AND state <> 'closed'), 0)
                     FROM workspaces WHERE id = $1)::bigint AS held`,
          [workspaceId],
        )
      ).rows[0];
      if ((row.logs >= answered && Number(row.held) === 0) || Date.now() > deadline) break;
      await sleep(50);
    }
    return row;
  } finally {
    await c.end();
  }
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
  const procs = [];
  try {
    const { loadConfig } = require(join(root, 'dist/src/config/app-config.js'));
    const { migrateDatabase } = require(join(root, 'dist/src/database/prepare-database.js'));
    await migrateDatabase(loadConfig({ NODE_ENV: 'test', DATABASE_URL: dbUrl }));

    if (HOLDS_ONLY) {
      // `npm run bench -- --holds`: only the last step, holds and settlements on one workspace
      console.log(`holds + settlements/s: ${fmt(await leasedHoldsPerSecond(dbUrl), 0)} with escrow leases (median of ${ROUNDS} rounds)`);
      return;
    }

    const provider = await portReporter(['-e', FAKE_PROVIDER]);
    procs.push(provider.proc);
    const bare = await portReporter([join(__dirname, 'bare-proxy.js'), provider.origin]);
    procs.push(bare.proc);
    const portkey = await startPortkey(provider.origin);
    procs.push(portkey.proc);
    const nexo = await startNexo(dbUrl, prefix, provider.origin);
    procs.push(nexo.proc);
    if (nexo.worker) procs.push(nexo.worker);
    const plain = { 'content-type': 'application/json', authorization: `Bearer ${PROVIDER_KEY}` };
    const targets = [
      { name: 'provider', label: 'provider directly', origin: provider.origin, headers: plain, procs: [provider.proc] },
      { name: 'bare', label: 'bare undici proxy', origin: bare.origin, headers: plain, procs: [bare.proc] },
      { name: 'portkey', label: 'Portkey gateway', origin: portkey.origin, headers: portkey.headers, procs: [portkey.proc] },
      {
        name: 'nexo',
        label: 'NexoRouter',
        origin: nexo.origin,
        headers: nexo.headers,
        procs: nexo.worker ? [nexo.proc, nexo.worker] : [nexo.proc],
      },
    ];
    if (SERVE) {
      // `npm run bench -- --serve`: the targets stay up for a profiler or strace until Ctrl-C
      for (const t of targets) {
        const [pid, ...workers] = t.procs.map((p) => p.pid);
        console.log(JSON.stringify({ name: t.name, origin: t.origin, pid, workers, headers: t.headers }));
      }
      await new Promise((resolve) => ['SIGINT', 'SIGTERM'].forEach((s) => process.once(s, resolve)));
      return;
    }
    let nexoAnswered = 0;
    const count200 = (t, r) => {
      if (t.name === 'nexo') nexoAnswered += r['2xx'];
    };

    console.log(`Warming up (JIT, pools, caches) ...`);
    for (const t of targets) count200(t, await cannon(t, 16, 1000));

    console.log(`Latency, one request at a time: ${SERIAL} rounds over the four targets, interleaved ...`);
    const serial = await serialLatency(targets, SERIAL);
    nexoAnswered += SERIAL - serial.nexo.failures;

    // a gateway under load runs for days: before its throughput is measured, each target gets as
    // many requests as one measurement sends it, so what is measured is its steady state
    console.log(`Warming up under load: ${WARMUP} requests over 64 connections per target ...`);
    for (const t of targets) count200(t, await cannon(t, 64, WARMUP));

    const results = {};
    for (const t of targets) results[t.name] = { serial: serial[t.name] };
    // in ROUNDS rounds, the targets in a new order each round: a machine that slows down or speeds
    // up for a while (a shared VM does) moves every target alike; each figure is the median round
    for (const connections of [16, 64]) {
      const rounds = new Map(targets.map((t) => [t.name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? targets : [...targets].reverse();
        for (const t of order) {
          console.log(`Throughput, round ${round + 1}/${ROUNDS}: ${REQUESTS} requests over ${connections} connections to ${t.label} ...`);
          const before = procStats(t.procs);
          const t0 = performance.now();
          const r = await cannon(t, connections, REQUESTS);
          const seconds = (performance.now() - t0) / 1000;
          count200(t, r);
          // NexoRouter's CPU counts the settlement of what it answered: its workers may still be at it
          if (t.name === 'nexo') await waitSettled(dbUrl, nexo.workspaceId, nexoAnswered);
          const after = procStats(t.procs);
          rounds.get(t.name).push({
            rps: r['2xx'] / seconds,
            non2xx: r.non2xx + r.errors + r.timeouts,
            cpuUsPerRequest: ((after.cpuMs - before.cpuMs) * 1000) / Math.max(1, r['2xx']),
          });
          results[t.name].peakRssMb = after.peakRssMb;
        }
      }
      for (const t of targets) {
        const runs = rounds.get(t.name);
        const median = (f) =>
          pct(
            runs.map(f).sort((a, b) => a - b),
            50,
          );
        results[t.name][connections] = {
          rps: median((x) => x.rps),
          cpuUsPerRequest: median((x) => x.cpuUsPerRequest),
          non2xx: runs.reduce((n, x) => n + x.non2xx, 0),
        };
      }
    }

    console.log('Checking that every answered request was charged exactly once ...');
    const settled = await waitSettled(dbUrl, nexo.workspaceId, nexoAnswered);

    // PostgreSQL's own pace, on a machine the targets no longer share (idle, they still cost a few %)
    await stopAll(procs);
    console.log(`Holds and settlements on one workspace from two processes (escrow leases ${ROUNDS} times, then per-request holds) ...`);
    const holdsPerSecond = await leasedHoldsPerSecond(dbUrl);
    const perRequestHoldsPerSecond = await benchHolds(dbUrl, false);

    // ---- the table ----
    const base = results.provider.serial.p50;
    const base99 = results.provider.serial.p99;
    console.log('\n| target | added p50 (1 at a time) | added p99 | req/s @16 | req/s @64 | CPU µs/req @64 | peak RSS MB | errors |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const t of targets) {
      const r = results[t.name];
      const added = t.name === 'provider' ? '—' : `${fmt(r.serial.p50 - base)} ms`;
      const added99 = t.name === 'provider' ? '—' : `${fmt(r.serial.p99 - base99)} ms`;
      const errors = r[16].non2xx + r[64].non2xx + r.serial.failures;
      console.log(
        `| ${t.label} | ${added} | ${added99} | ${fmt(r[16].rps, 0)} | ${fmt(r[64].rps, 0)} | ${fmt(r[64].cpuUsPerRequest, 0)} | ${fmt(r.peakRssMb, 0)} | ${errors} |`,
      );
    }
    const n = results.nexo;
    const checks = [
      ['throughput @64 vs Portkey (target ≥ 2×)', n[64].rps / results.portkey[64].rps, (v) => v >= 2, (v) => `${fmt(v, 2)}×`],
      [
        'added p50 one at a time (target < 1 ms)',
        n.serial.p50 - base,
        (v) => v < 1,
        (v) => `${fmt(v)} ms (${fmt((n.serial.p50 - base) / Math.max(0.001, results.portkey.serial.p50 - base), 2)}× Portkey's)`,
      ],
      [
        'added p50 minus the bare proxy’s (target ≤ 0.5 ms)',
        n.serial.p50 - results.bare.serial.p50,
        (v) => v <= 0.5,
        (v) => `${fmt(v)} ms`,
      ],
      ['added p99 one at a time (target < 5 ms)', n.serial.p99 - base99, (v) => v < 5, (v) => `${fmt(v)} ms`],
      ['CPU per request, all NexoRouter processes (target ≤ 600 µs)', n[64].cpuUsPerRequest, (v) => v <= 600, (v) => `${fmt(v, 0)} µs`],
      ['peak RSS (target < 300 MB)', n.peakRssMb, (v) => v < 300, (v) => `${fmt(v, 0)} MB`],
      [
        'holds + settlements/s on one workspace, 2 processes (target ≥ 10,000)',
        holdsPerSecond,
        (v) => v >= 10_000,
        (v) => `${fmt(v, 0)} with escrow leases (${fmt(perRequestHoldsPerSecond, 0)} with a hold per request)`,
      ],
    ];
    console.log('\n| measure | this run | target met |');
    console.log('|---|---|---|');
    for (const [label, value, ok, show] of checks) console.log(`| ${label} | ${show(value)} | ${ok(value) ? 'yes' : 'no'} |`);

    const exact =
      settled.logged === nexoAnswered &&
      settled.logs === nexoAnswered &&
      settled.charges === settled.logged &&
      BigInt(settled.logged_cost) === BigInt(settled.charged) &&
      BigInt(settled.charged) === BigInt(settled.spent) &&
      BigInt(settled.held) === 0n;
    console.log(
      `\nNexoRouter answered ${nexoAnswered} requests 200; usage logs ${settled.logs} (${settled.logged} with 200), charges ${settled.charges}, ` +
        `charged ${settled.charged} micro-USD, logged cost ${settled.logged_cost}, balance moved ${settled.spent}, still held ${settled.held}: ` +
        (exact ? 'every answered request charged exactly once.' : 'MISMATCH.'),
    );
    if (!exact) process.exitCode = 1;
  } finally {
    await stopAll([...procs].reverse());
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
}

if (process.argv[2] === '--holds-worker' || process.argv[2] === '--leased-worker') {
  const [dbUrl, ws, key, count, concurrency] = process.argv.slice(3);
  const worker = process.argv[2] === '--holds-worker' ? holdsWorker : leasedWorker;
  worker(dbUrl, ws, key, Number(count), Number(concurrency)).then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
