// The dashboard API (CONTRACT §5) as the app uses it. The session token lives in sessionStorage
// only: never in a URL, a cookie or a log, and gone when the tab closes.

const TOKEN_KEY = 'nexo.session';

export function sessionToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setSessionToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An error the gateway answered (OpenAI's shape), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

type Listener = () => void;
const expiredListeners = new Set<Listener>();

/** Called when the gateway refuses the session (expired, logged out elsewhere). */
export function onSessionExpired(listener: Listener): () => void {
  expiredListeners.add(listener);
  return () => expiredListeners.delete(listener);
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  body?: unknown;
  query?: Record<string, string | number | undefined | null>;
  headers?: Record<string, string>;
  /** false for the sign-up and log-in forms: a 401 there is a wrong password, not an expired session */
  session?: boolean;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const { method = 'GET', body, query, session = true } = options;
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  const token = session ? sessionToken() : null;
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'The gateway cannot be reached. Check your connection and try again.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const err = (json as { error?: { message?: string; code?: string | null; param?: string | null } } | null)?.error;
    const message = err?.message ?? `The gateway answered ${res.status} ${res.statusText}.`;
    if (res.status === 401 && session && token) {
      setSessionToken(null);
      for (const listener of expiredListeners) listener();
    }
    throw new ApiError(res.status, message, err?.code ?? null, err?.param ?? null);
  }
  return json as T;
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return 'Something went wrong.';
}

// ---- shapes of the dashboard API ----

export type Role = 'owner' | 'member';

export interface SessionWorkspace {
  id: string;
  name: string;
  role: Role;
  balance_micros: number;
  available_micros: number;
}

export interface Session {
  user: { id: string; email: string };
  workspace: SessionWorkspace;
}

export interface SignupResult extends Session {
  access_token: string;
  expires_in: number;
}

export interface Workspace extends SessionWorkspace {
  rpm_limit: number | null;
  tpm_limit: number | null;
}

export type BudgetPeriod = 'daily' | 'weekly' | 'monthly';

export interface ApiKey {
  id: string;
  workspace_id: string;
  name: string;
  prefix: string;
  last_four: string;
  models: string[] | null;
  budget_micros: number | null;
  budget_period: BudgetPeriod | null;
  spent_micros: number;
  rpm_limit: number | null;
  tpm_limit: number | null;
  expires_at: string | null;
  disabled: boolean;
  revoked: boolean;
  last_used_at: string | null;
  created_at: string;
}

export interface CreatedKey extends ApiKey {
  key: string;
}

export interface KeyCreate {
  name: string;
  models?: string[] | null;
  budget_micros?: number | null;
  budget_period?: BudgetPeriod | null;
  expires_at?: string | null;
  rpm_limit?: number | null;
  tpm_limit?: number | null;
}

export interface SellableModel {
  id: string;
  type: 'chat' | 'embedding';
  input_price_micros: number;
  output_price_micros: number;
  max_output_tokens: number;
  context_length: number | null;
}

export interface UsageLog {
  request_id: string;
  key_id: string;
  model: string;
  provider: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  cost_micros: number;
  status: number | null;
  error_code: string | null;
  latency_ms: number;
  stream: boolean;
  usage_source: 'provider' | 'tokenizer' | 'hold' | 'none';
  created_at: string;
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export interface UsageGroup {
  day?: string;
  model?: string;
  key_id?: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_micros: number;
}

export interface UsageSummary {
  group_by: 'day' | 'model' | 'key';
  from_day: string | null;
  to_day: string | null;
  data: UsageGroup[];
  totals: { requests: number; prompt_tokens: number; completion_tokens: number; cost_micros: number };
}

export type LedgerKind = 'credit' | 'charge' | 'refund' | 'correction' | 'topup' | 'dispute';

export interface LedgerEntry {
  id: string;
  kind: LedgerKind;
  amount_micros: number;
  balance_after_micros: number;
  reference: string;
  key_id: string | null;
  reason: string | null;
  created_at: string;
}

export interface CheckoutConfig {
  enabled: boolean;
  min_cents: number;
  max_cents: number;
  currency: 'usd';
}

export interface CheckoutStatus {
  status: 'pending' | 'credited' | 'expired' | 'failed';
  amount_micros: number;
}
