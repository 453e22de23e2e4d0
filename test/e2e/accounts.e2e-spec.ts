import { Controller, ExecutionContext, Get } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import * as argon2 from 'argon2';
import { createHmac, randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { PASSWORD_HASH_OPTIONS } from '../../src/accounts/accounts.service';
import type { SessionRequest } from '../../src/accounts/session-request';
import { SessionService } from '../../src/accounts/session.service';
import { AuthGuard } from '../../src/auth/auth.guard';
import { RequireRole, SessionAuth } from '../../src/common/auth-scope';
import { KeysService } from '../../src/keys/keys.service';
import { ADMIN_TOKEN, TestGateway } from '../helpers/gateway';
import { closeAll } from '../helpers/setup';

/**
 * Dashboard accounts (CONTRACT §5): sign-up, login and its throttles, sessions (never on /v1,
 * never opened by an API key), logout on every gateway process, and owner-only routes.
 */

const PASSWORD = 'correct horse battery staple';

function expectError(res: Response, status: number, code?: string, param?: string | null): void {
  if (res.status !== status) throw new Error(`expected HTTP ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
  expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  if (code !== undefined) expect(res.body.error.code).toBe(code);
  if (param !== undefined) expect(res.body.error.param).toBe(param);
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 3_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let counter = 0;
const uniqueEmail = (label = 'user') => `${label}-${Date.now().toString(36)}-${counter++}@example.com`;

const signup = (gw: TestGateway, body: Record<string, unknown>) => gw.http().post('/auth/signup').send(body);
const login = (gw: TestGateway, email: string, password = PASSWORD) => gw.http().post('/auth/login').send({ email, password });
const whoami = (gw: TestGateway, token: string) => gw.http().get('/auth/session').set('authorization', `Bearer ${token}`);

async function account(
  gw: TestGateway,
  email = uniqueEmail(),
): Promise<{ email: string; token: string; workspaceId: string; userId: string }> {
  const res = await signup(gw, { email, password: PASSWORD, workspace_name: 'Acme' }).expect(201);
  return { email, token: res.body.access_token, workspaceId: res.body.workspace.id, userId: res.body.user.id };
}

async function count(gw: TestGateway, table: 'users' | 'workspaces' | 'workspace_members'): Promise<number> {
  const [row] = await gw.db.query(`SELECT count(*)::int AS n FROM ${table}`);
  return row.n;
}

/** A token signed like the gateway's, with any claims (for forged and expired tokens). */
function signJwt(secret: string, claims: Record<string, unknown>, alg = 'HS256'): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`;
  if (alg === 'none') return `${head}.`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

// generous throttles for everything but the throttle tests, which have gateways of their own
const RELAXED = { SIGNUPS_PER_ADDRESS_PER_HOUR: '10000', LOGIN_FAILURES_PER_ADDRESS: '10000', LOGIN_FAILURES_PER_EMAIL: '1000' };

describe('accounts and sessions', () => {
  let gw: TestGateway;
  let gw2: TestGateway;

  beforeAll(async () => {
    gw = await TestGateway.start({ env: RELAXED });
    gw2 = await TestGateway.start({ shareWith: gw, env: RELAXED });
  });
  afterAll(() => closeAll(gw2, gw));

  describe('sign-up', () => {
    it('creates the user, an owned workspace with sign-up limits and credit, and a session', async () => {
      const email = uniqueEmail('ada');
      const res = await signup(gw, { email: `  ${email.toUpperCase()} `, password: PASSWORD, workspace_name: ' Ada Labs ' }).expect(201);
      expect(res.body).toEqual({
        access_token: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/),
        token_type: 'bearer',
        expires_in: 3600,
        user: { id: expect.stringMatching(/^[0-9a-f-]{36}$/), email },
        workspace: {
          id: expect.stringMatching(/^[0-9a-f-]{36}$/),
          name: 'Ada Labs',
          role: 'owner',
          balance_micros: 1_000_000,
          available_micros: 1_000_000,
        },
      });
      const workspaceId = res.body.workspace.id;
      const [ws] = await gw.db.query('SELECT rpm_limit, tpm_limit, balance_micros FROM workspaces WHERE id = $1', [workspaceId]);
      expect(ws).toEqual({ rpm_limit: 60, tpm_limit: 100000, balance_micros: '1000000' });
      const entries = await gw.db.query('SELECT kind, amount_micros, reference FROM ledger_entries WHERE workspace_id = $1', [workspaceId]);
      expect(entries).toEqual([{ kind: 'credit', amount_micros: '1000000', reference: `signup:${workspaceId}` }]);
      const [user] = await gw.db.query('SELECT email, password_hash FROM users WHERE id = $1', [res.body.user.id]);
      expect(user.email).toBe(email);
      expect(user.password_hash).toMatch(/^\$argon2id\$/);
      const members = await gw.db.query('SELECT user_id, role FROM workspace_members WHERE workspace_id = $1', [workspaceId]);
      expect(members).toEqual([{ user_id: res.body.user.id, role: 'owner' }]);
      // the ledger is the dashboard's and the admin's alike
      const ledger = await gw.admin().get(`/admin/workspaces/${workspaceId}/ledger`).expect(200);
      expect(ledger.body.data).toHaveLength(1);
    });

    it('stores an email with non-ASCII letters lower-cased, and logs it in in any case', async () => {
      const local = `Ünïcode.ÄDA.${counter++}`;
      const res = await signup(gw, { email: `${local}@Example.COM`, password: PASSWORD, workspace_name: 'Ü' }).expect(201);
      expect(res.body.user.email).toBe(`${local.toLowerCase()}@example.com`);
      await login(gw, `${local.toUpperCase()}@EXAMPLE.com`).expect(200);
    });

    it('takes its limits and credit from SIGNUP_RPM_LIMIT, SIGNUP_TPM_LIMIT and SIGNUP_CREDIT_MICROS', async () => {
      const custom = await TestGateway.start({
        shareWith: gw,
        env: { ...RELAXED, SIGNUP_RPM_LIMIT: '7', SIGNUP_TPM_LIMIT: '0', SIGNUP_CREDIT_MICROS: '0' },
      });
      try {
        const res = await signup(custom, { email: uniqueEmail(), password: PASSWORD, workspace_name: 'Free' }).expect(201);
        expect(res.body.workspace).toMatchObject({ balance_micros: 0, available_micros: 0 });
        const [ws] = await gw.db.query('SELECT rpm_limit, tpm_limit FROM workspaces WHERE id = $1', [res.body.workspace.id]);
        expect(ws).toEqual({ rpm_limit: 7, tpm_limit: null });
        const entries = await gw.db.query('SELECT 1 FROM ledger_entries WHERE workspace_id = $1', [res.body.workspace.id]);
        expect(entries).toHaveLength(0);
      } finally {
        await custom.close();
      }
    });

    it('refuses a taken email (whatever its case) with 409 email_taken and creates nothing', async () => {
      const { email } = await account(gw);
      const before = await Promise.all([count(gw, 'users'), count(gw, 'workspaces'), count(gw, 'workspace_members')]);
      const res = await signup(gw, { email: ` ${email.toUpperCase()}`, password: 'another password', workspace_name: 'Again' });
      expectError(res, 409, 'email_taken', 'email');
      expect(await Promise.all([count(gw, 'users'), count(gw, 'workspaces'), count(gw, 'workspace_members')])).toEqual(before);
    });

    it('gives concurrent sign-ups with one email one account', async () => {
      const email = uniqueEmail('race');
      const results = await Promise.all(Array.from({ length: 4 }, () => signup(gw, { email, password: PASSWORD, workspace_name: 'Race' })));
      expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
      const [row] = await gw.db.query(
        `SELECT count(*)::int AS n FROM workspaces w JOIN workspace_members m ON m.workspace_id = w.id JOIN users u ON u.id = m.user_id
          WHERE u.email = $1`,
        [email],
      );
      expect(row.n).toBe(1);
      expect(await gw.db.query(`SELECT 1 FROM workspaces WHERE name = 'Race'`)).toHaveLength(1);
    });

    const valid = () => ({ email: uniqueEmail(), password: PASSWORD, workspace_name: 'Acme' });
    it.each([
      ['a missing email', { email: undefined }, 'email'],
      ['a malformed email', { email: 'not-an-email' }, 'email'],
      ['an email that is not a string', { email: 42 }, 'email'],
      ['an email over 254 characters', { email: `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.com` }, 'email'],
      ['an email with a NUL', { email: 'ada\u0000@example.com' }, 'email'],
      ['a password of 9 characters', { password: '123456789' }, 'password'],
      ['a password of 257 characters', { password: 'p'.repeat(257) }, 'password'],
      ['a password that is not a string', { password: 1234567890123 }, 'password'],
      ['a missing workspace name', { workspace_name: undefined }, 'workspace_name'],
      ['a blank workspace name', { workspace_name: '   ' }, 'workspace_name'],
      ['a workspace name of 201 characters', { workspace_name: 'w'.repeat(201) }, 'workspace_name'],
      ['a workspace name with a NUL', { workspace_name: 'Ac\u0000me' }, 'workspace_name'],
      ['an unknown field', { balance_micros: 1_000_000_000 }, 'balance_micros'],
      ['a role', { role: 'owner' }, 'role'],
    ])('refuses %s with 400 naming the field, creating nothing', async (_, change, param) => {
      const before = await Promise.all([count(gw, 'users'), count(gw, 'workspaces')]);
      const res = await signup(gw, { ...valid(), ...change });
      expectError(res, 400, 'invalid_request_error', param);
      expect(await Promise.all([count(gw, 'users'), count(gw, 'workspaces')])).toEqual(before);
    });

    it.each([
      ['an array', '[]'],
      ['a string', '"x"'],
      ['null', 'null'],
      ['not JSON', '{"email":'],
    ])('refuses a body that is %s with 400', async (_, body) => {
      const res = await gw.http().post('/auth/signup').set('content-type', 'application/json').send(body);
      expectError(res, 400, 'invalid_request_error');
    });
  });

  describe('login', () => {
    it('answers a session token that opens session routes on every process', async () => {
      const { email, workspaceId, userId } = await account(gw);
      const res = await login(gw, ` ${email.toUpperCase()} `).expect(200);
      expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'bearer', expires_in: 3600 });
      for (const g of [gw, gw2]) {
        const me = await whoami(g, res.body.access_token).expect(200);
        expect(me.body).toEqual({
          user: { id: userId, email },
          workspace: { id: workspaceId, name: 'Acme', role: 'owner', balance_micros: 1_000_000, available_micros: 1_000_000 },
        });
      }
      const claims = JSON.parse(Buffer.from(res.body.access_token.split('.')[1], 'base64url').toString());
      expect(claims).toMatchObject({ sub: userId, wid: workspaceId, role: 'owner', ver: 0, jti: expect.any(String) });
      expect(claims.exp - claims.iat).toBe(3600);
    });

    it('answers a wrong password and an unknown email with the same 401, after the same work', async () => {
      const { email } = await account(gw);
      const timed = async (e: string) => {
        const started = performance.now();
        const res = await login(gw, e, 'wrong password!');
        return { res, ms: performance.now() - started };
      };
      const wrong: number[] = [];
      const unknown: number[] = [];
      let first: [Response, Response] | undefined;
      for (let i = 0; i < 5; i++) {
        const a = await timed(email);
        const b = await timed(uniqueEmail('nobody'));
        first ??= [a.res, b.res];
        wrong.push(a.ms);
        unknown.push(b.ms);
      }
      const [a, b] = first!;
      expectError(a, 401, 'invalid_credentials');
      expectError(b, 401, 'invalid_credentials');
      expect(b.body).toEqual(a.body);
      // both paths run argon2 (≈0.1 s): medians within a factor of two of each other
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[2];
      expect(median(unknown)).toBeGreaterThan(median(wrong) / 2);
      expect(median(wrong)).toBeGreaterThan(median(unknown) / 2);
    });

    it.each([
      ['a missing password', { password: undefined }, 'password'],
      ['an unknown field', { remember: true }, 'remember'],
      ['a password over 256 characters', { password: 'p'.repeat(257) }, 'password'],
      ['an email with a NUL', { email: 'a\u0000@example.com' }, 'email'],
    ])('refuses %s with 400 naming the field', async (_, change, param) => {
      expectError(
        await gw
          .http()
          .post('/auth/login')
          .send({ email: 'a@example.com', password: PASSWORD, ...change }),
        400,
        'invalid_request_error',
        param,
      );
    });
  });

  describe('sessions and API keys stay apart', () => {
    it('a session token never opens the public API', async () => {
      const { token } = await account(gw);
      for (const path of ['/v1/models', '/v1/key']) {
        expectError(await gw.http().get(path).set('authorization', `Bearer ${token}`), 401, 'invalid_api_key');
      }
      const chat = await gw
        .http()
        .post('/v1/chat/completions')
        .set('authorization', `Bearer ${token}`)
        .send({ model: 'gpt-4o-mini', messages: [] });
      expectError(chat, 401, 'invalid_api_key');
    });

    it('an API key, the admin token or no token never opens a session route', async () => {
      const { key } = await gw.workspaceWithKey();
      for (const header of [`Bearer ${key}`, `Bearer ${ADMIN_TOKEN}`, undefined, 'Bearer ', 'Basic abc']) {
        for (const req of [gw.http().get('/auth/session'), gw.http().post('/auth/logout'), gw.http().post('/auth/logout-all')]) {
          if (header !== undefined) req.set('authorization', header);
          expectError(await req, 401, 'invalid_session');
        }
      }
    });

    it('refuses forged, tampered, foreign and expired tokens', async () => {
      const { token, userId, workspaceId } = await account(gw);
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        sub: userId,
        wid: workspaceId,
        role: 'owner',
        ver: 0,
        jti: randomUUID(),
        iss: 'nexorouter',
        aud: 'nexorouter-dashboard',
      };
      const secret = gw.config.jwtSecret;
      const [head, , sig] = token.split('.');
      const tampered = `${head}.${Buffer.from(JSON.stringify({ ...claims, exp: now + 3600, role: 'owner', wid: randomUUID() })).toString('base64url')}.${sig}`;
      const bad = [
        tampered,
        signJwt(secret, { ...claims, iat: now - 7200, exp: now - 3600 }), // expired
        signJwt('another-secret-of-at-least-thirty-two-chars', { ...claims, iat: now, exp: now + 3600 }),
        signJwt(secret, { ...claims, iat: now, exp: now + 3600 }, 'none'),
        signJwt(secret, { ...claims, aud: 'someone-else', iat: now, exp: now + 3600 }),
        signJwt(secret, { ...claims, ver: 1, iat: now, exp: now + 3600 }), // a version the user never had
        'not.a.jwt',
      ];
      for (const t of bad) expectError(await whoami(gw, t), 401, 'invalid_session');
      // the well-signed one with the right claims is accepted: the checks above are the reason
      await whoami(gw, signJwt(secret, { ...claims, iat: now, exp: now + 3600 })).expect(200);
    });

    it('processes of one deployment share its JWT_SECRET; another deployment does not accept its sessions', async () => {
      expect(gw2.config.jwtSecret).toBe(gw.config.jwtSecret);
      const other = await TestGateway.start({ env: RELAXED });
      try {
        expect(other.config.jwtSecret).not.toBe(gw.config.jwtSecret);
        const { token } = await account(gw);
        expectError(await whoami(other, token), 401, 'invalid_session');
      } finally {
        await other.close();
      }
    });
  });

  it('documents the session scheme on the session routes', async () => {
    const docs = (await gw.http().get('/docs-json').expect(200)).body;
    expect(docs.components.securitySchemes.session).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const [path, method] of [
      ['/auth/session', 'get'],
      ['/auth/logout', 'post'],
      ['/auth/logout-all', 'post'],
    ]) {
      expect(docs.paths[path][method].security).toEqual([{ session: [] }]);
    }
    expect(docs.paths['/auth/login'].post.security ?? []).toEqual([]);
    expect(Object.keys(docs.components.schemas.SignupDto.properties).sort()).toEqual(['email', 'password', 'workspace_name']);
  });

  describe('logout', () => {
    it('ends this session on every process at once, and no other', async () => {
      const { email, token } = await account(gw);
      const other = (await login(gw2, email).expect(200)).body.access_token;
      await whoami(gw2, token).expect(200);
      await gw.http().post('/auth/logout').set('authorization', `Bearer ${token}`).expect(204);
      expectError(await whoami(gw2, token), 401, 'invalid_session');
      expectError(await whoami(gw, token), 401, 'invalid_session');
      expectError(await gw2.http().post('/auth/logout').set('authorization', `Bearer ${token}`), 401, 'invalid_session');
      await whoami(gw, other).expect(200);
      await whoami(gw2, other).expect(200);
    });

    it('logout-all ends every session of the user on every process within 1 s; a new login works', async () => {
      const { email, token } = await account(gw);
      const second = (await login(gw2, email).expect(200)).body.access_token;
      const bystander = (await account(gw)).token;
      // both processes have the user's session state in memory
      for (const g of [gw, gw2]) for (const t of [token, second]) await whoami(g, t).expect(200);
      await gw2.http().post('/auth/logout-all').set('authorization', `Bearer ${second}`).expect(204);
      const elapsed = await eventually(async () => {
        const results = await Promise.all([whoami(gw, token), whoami(gw, second), whoami(gw2, token), whoami(gw2, second)]);
        return results.every((r) => r.status === 401);
      });
      expect(elapsed).toBeLessThan(1_000);
      await whoami(gw, bystander).expect(200);
      const fresh = (await login(gw, email).expect(200)).body.access_token;
      await whoami(gw2, fresh).expect(200);
    });
  });

  describe('roles', () => {
    @Controller('test-roles')
    class RolesProbe {
      @Get('owner')
      @RequireRole('owner')
      ownerOnly(this: void): void {}

      @Get('any')
      @SessionAuth()
      anyMember(this: void): void {}
    }

    /** Runs the real global guard for a handler of RolesProbe with this bearer token. */
    async function guard(g: TestGateway, handler: 'ownerOnly' | 'anyMember', token: string): Promise<SessionRequest> {
      const authGuard = new AuthGuard(new Reflector(), g.app.get(KeysService), g.config, g.app.get(SessionService));
      const req = { method: 'GET', headers: { authorization: `Bearer ${token}` }, socket: {} } as unknown as SessionRequest;
      const context = {
        getHandler: () => RolesProbe.prototype[handler],
        getClass: () => RolesProbe,
        switchToHttp: () => ({ getRequest: () => req, getResponse: () => ({}) }),
      } as unknown as ExecutionContext;
      await authGuard.canActivate(context);
      return req;
    }

    it('a member may use session routes but not owner-only ones; a role change applies within 1 s', async () => {
      const owner = await account(gw);
      const memberEmail = uniqueEmail('member');
      const hash = await argon2.hash(PASSWORD, PASSWORD_HASH_OPTIONS);
      const [member] = await gw.db.query('INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id', [memberEmail, hash]);
      await gw.db.query(
        `INSERT INTO workspace_members (workspace_id, user_id, role, invited_by, accepted_at) VALUES ($1, $2, 'member', $3, now())`,
        [owner.workspaceId, member.id, owner.userId],
      );
      const memberToken = (await login(gw, memberEmail).expect(200)).body.access_token;
      const me = await whoami(gw, memberToken).expect(200);
      expect(me.body.workspace).toMatchObject({ id: owner.workspaceId, role: 'member' });

      expect((await guard(gw, 'ownerOnly', owner.token)).session).toEqual({
        userId: owner.userId,
        workspaceId: owner.workspaceId,
        role: 'owner',
        email: owner.email,
      });
      expect((await guard(gw, 'anyMember', memberToken)).session).toMatchObject({ userId: member.id, role: 'member' });
      await expect(guard(gw, 'ownerOnly', memberToken)).rejects.toMatchObject({ status: 403, code: 'permission_denied' });

      await gw.db.query(`UPDATE workspace_members SET role = 'owner' WHERE user_id = $1`, [member.id]);
      await eventually(
        () =>
          guard(gw2, 'ownerOnly', memberToken).then(
            () => true,
            () => false,
          ),
        1_500,
      );
      // removed from the workspace: the session no longer opens it
      await gw.db.query('DELETE FROM workspace_members WHERE user_id = $1', [member.id]);
      await eventually(async () => (await whoami(gw, memberToken)).status === 401, 1_500);
    });

    it('a pending invitation opens nothing', async () => {
      const owner = await account(gw);
      const invited = await account(gw);
      await gw.db.query(`INSERT INTO workspace_members (workspace_id, user_id, role, invited_by) VALUES ($1, $2, 'member', $3)`, [
        owner.workspaceId,
        invited.userId,
        owner.userId,
      ]);
      // the login opens the invited user's own workspace; a token for the other one is refused
      const token = (await login(gw, invited.email).expect(200)).body.access_token;
      expect((await whoami(gw, token).expect(200)).body.workspace.id).toBe(invited.workspaceId);
      const now = Math.floor(Date.now() / 1000);
      const forOther = signJwt(gw.config.jwtSecret, {
        sub: invited.userId,
        wid: owner.workspaceId,
        role: 'member',
        ver: 0,
        jti: randomUUID(),
        iss: 'nexorouter',
        aud: 'nexorouter-dashboard',
        iat: now,
        exp: now + 3600,
      });
      expectError(await whoami(gw, forOther), 401, 'invalid_session');
    });
  });
});

describe('login and sign-up throttles', () => {
  let a: TestGateway;
  let b: TestGateway;
  const env = { LOGIN_FAILURES_PER_EMAIL: '3', LOGIN_FAILURES_PER_ADDRESS: '8', SIGNUPS_PER_ADDRESS_PER_HOUR: '3' };

  beforeAll(async () => {
    a = await TestGateway.start({ env });
    b = await TestGateway.start({ shareWith: a, env });
  });
  afterAll(() => closeAll(b, a));

  function expectThrottled(res: Response, maxSeconds: number): void {
    expectError(res, 429, 'rate_limit_exceeded');
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(maxSeconds);
  }

  it('hold across two gateway processes: per account, per address, and sign-ups per address', async () => {
    const first = uniqueEmail('victim');
    const second = uniqueEmail('user');
    await signup(a, { email: first, password: PASSWORD, workspace_name: 'A' }).expect(201);
    await signup(b, { email: second, password: PASSWORD, workspace_name: 'B' }).expect(201);

    // per account: 3 failures, spread over both processes, then even the right password waits
    for (const g of [a, b, a]) expectError(await login(g, first, 'wrong password'), 401, 'invalid_credentials');
    expectThrottled(await login(b, first, 'wrong password'), 15 * 60);
    expectThrottled(await login(a, first), 15 * 60);
    expectThrottled(await login(b, ` ${first.toUpperCase()}`), 15 * 60);

    // a successful login starts the account's count over (and gives the address its attempt back)
    for (const g of [a, b]) expectError(await login(g, second, 'wrong password'), 401, 'invalid_credentials');
    await login(a, second).expect(200);
    for (const g of [b, a]) expectError(await login(g, second, 'wrong password'), 401, 'invalid_credentials');
    await login(b, second).expect(200);

    // per address: 3 + 4 failures so far; one more, then every login from this address waits
    expectError(await login(a, uniqueEmail('nobody'), 'wrong password'), 401, 'invalid_credentials');
    expectThrottled(await login(b, uniqueEmail('nobody'), 'wrong password'), 15 * 60);
    expectThrottled(await login(a, second), 15 * 60);

    // sign-ups: 3 an hour per address, counted by both processes together
    await signup(a, { email: uniqueEmail(), password: PASSWORD, workspace_name: 'C' }).expect(201);
    const refused = await signup(b, { email: uniqueEmail(), password: PASSWORD, workspace_name: 'D' });
    expectThrottled(refused, 60 * 60);
  });
});
