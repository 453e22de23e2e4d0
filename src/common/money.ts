import { ValueTransformer } from 'typeorm';

/** 1 USD in micro-USD. */
export const MICROS_PER_USD = 1_000_000;

/** `$X.XXXXXX` for people; exact, no floating point. */
export function formatUsd(micros: number): string {
  const sign = micros < 0 ? '-' : '';
  const abs = BigInt(Math.abs(micros));
  const whole = abs / 1_000_000n;
  const frac = (abs % 1_000_000n).toString().padStart(6, '0');
  return `${sign}$${whole}.${frac}`;
}

/**
 * bigint columns come back from pg as strings; micro-USD amounts stay far below 2^53
 * (9 billion USD), so they are exact as JS numbers. Anything larger is refused loudly.
 */
export const bigintMicros: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | null) => {
    if (value === null || value === undefined) return value;
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw new Error(`bigint value out of safe range: ${value}`);
    return n;
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
