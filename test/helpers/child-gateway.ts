import { ChildProcess, execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TestGateway } from './gateway';
import { waitFor } from './wait';

/**
 * Real processes of the compiled gateway (dist/, kept current by the global setup): gateway
 * children started with the env of a TestGateway (`gw.env(...)`), and the reconcile CLI.
 */
const DIST = join(__dirname, '..', '..', 'dist', 'src');

export interface ChildGateway {
  proc: ChildProcess;
  url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output: () => string;
}

/** Every child gateway this test file started (jest gives each file its own module registry). */
const children = new Set<ChildProcess>();

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** SIGKILL, resolved once the process has exited (at once if it already has). */
export function killChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGKILL');
  return exited;
}

/** Kills every child gateway this test file started (for afterAll). */
export async function killChildGateways(): Promise<void> {
  await Promise.all([...children].map(killChild));
}

/** `node dist/src/main.js` with the given env on a free port; resolves once /health/ready answers 200. */
export async function startChildGateway(env: Record<string, string>): Promise<ChildGateway> {
  const port = await freePort();
  const proc = spawn(process.execPath, [join(DIST, 'main.js')], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      'the child gateway to be ready',
      async () => {
        if (proc.exitCode !== null) throw new Error(`child exited with ${proc.exitCode}`);
        const res = await fetch(`${url}/health/ready`);
        return res.status === 200 ? true : undefined;
      },
      30_000,
    );
  } catch (err) {
    await killChild(proc);
    throw new Error(`${(err as Error).message}\n--- child output ---\n${out}`, { cause: err });
  }
  return { proc, url, output: () => out };
}

/** `npm run reconcile` as operators run it: the compiled CLI against DATABASE_URL. */
export function runReconcile(databaseUrl: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(DIST, 'cli', 'reconcile.js')],
      { env: { ...process.env, NODE_ENV: 'test', DATABASE_URL: databaseUrl }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: stdout + stderr }),
    );
  });
}

/** The reconcile CLI finds the gateway's ledger, balances and usage logs in agreement. */
export async function expectNoDrift(gw: TestGateway): Promise<void> {
  const result = await runReconcile(gw.databaseUrl);
  expect(result.stdout).toContain('no drift');
  expect(result.code).toBe(0);
}
