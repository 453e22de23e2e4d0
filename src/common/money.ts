import { ValueTransformer } from 'typeorm';

/** 1 USD in micro-USD. */
export const MICROS_PER_USD = 1_000_000;

/** CONTRACT §2: the largest credit or correction, in micro-USD ($1,000,000). */
export const MAX_CREDIT_MICROS = 1_000_000_000_000;

/** CONTRACT §2: no balance or spend leaves ±(2^53 - 1), the exact JSON integers. */
export const MAX_BALANCE_MICROS = Number.MAX_SAFE_INTEGER;

/**
 * A bigint from PostgreSQL (a string) as a JSON-safe number. Amounts are kept within ±(2^53-1)
 * where they are written; one outside it (written by hand) is answered clamped to that range,
 * never as a 500 and never as an inexact number.
 */
export function safeMicros(value: string | number | bigint): number {
  const big = typeof value === 'bigint' ? value : typeof value === 'number' ? BigInt(Math.trunc(value)) : BigInt(value);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  if (big < BigInt(-Number.MAX_SAFE_INTEGER)) return -Number.MAX_SAFE_INTEGER;
  return Number(big);
}

/** `$X.XXXXXX` for people; exact, no floating point. */
export function formatUsd(micros: number): string {
  const sign = micros < 0 ? '-' : '';
  const abs = BigInt(Math.abs(micros));
  const whole = abs / 1_000_000n;
  const frac = (abs % 1_000_000n).toString().padStart(6, '0');
  return `${sign}$${whole}.${frac}`;
}

/**
 * bigint columns come back from pg as strings; micro-USD amounts are kept within ±(2^53-1)
 * (9 billion USD), so they are exact as JS numbers. One outside (only by hand) is clamped by
 * safeMicros rather than failing every read of its row.
 */
export const bigintMicros: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | null) => {
    if (value === null || value === undefined) return value;
    return safeMicros(value);
  },
};

/**
 * CONTRACT §2: ceil((prompt * input_price + completion * output_price) / 1e6), in BigInt so
 * no intermediate product loses precision.
 */
export function costMicros(promptTokens: number, completionTokens: number, inputPrice: number, outputPrice: number): number {
  const total = BigInt(promptTokens) * BigInt(inputPrice) + BigInt(completionTokens) * BigInt(outputPrice);
  const cost = (total + 999_999n) / 1_000_000n;
  return Number(cost);
}
