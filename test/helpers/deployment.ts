import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { ApiError } from '../../src/common/errors/api-error';
import { createTestDatabase, dropDatabase, REDIS_URL } from './databases';

/** Where one test deployment keeps its state: a migrated database and a Redis key prefix. */
export interface Deployment {
  databaseName: string;
  databaseUrl: string;
  redisPrefix: string;
}

/** A new deployment, or `shareWith`'s (another process of the same deployment). */
export async function deployment(shareWith?: Deployment): Promise<Deployment & { owned: boolean }> {
  if (shareWith) {
    const { databaseName, databaseUrl, redisPrefix } = shareWith;
    return { databaseName, databaseUrl, redisPrefix, owned: false };
  }
  const database = await createTestDatabase();
  return { databaseName: database.name, databaseUrl: database.url, redisPrefix: `nexotest-${randomBytes(5).toString('hex')}`, owned: true };
}

/** Deletes a deployment's Redis keys and drops its database. */
export async function removeDeployment(d: Deployment): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${d.redisPrefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  await dropDatabase(d.databaseName);
}

/** The ApiError a call fails with (the test fails if it succeeds or throws anything else). */
export async function failure(call: Promise<unknown>): Promise<ApiError> {
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof ApiError)) throw new Error(`expected an ApiError, got ${String(err)}`);
  return err;
}
