import type { UsageLog } from './api';
import { usd } from './format';

/** One CSV field: quoted when needed; text a spreadsheet would run as a formula is prefixed with '. */
function field(value: string | number | boolean | null, text = false): string {
  if (value === null) return '';
  let s = String(value);
  if (text && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_COLUMNS = [
  'request_id',
  'created_at',
  'key_id',
  'key_name',
  'model',
  'provider',
  'status',
  'error_code',
  'prompt_tokens',
  'completion_tokens',
  'cost_micros',
  'cost_usd',
  'latency_ms',
  'stream',
  'usage_source',
] as const;

export function usageCsv(logs: UsageLog[], keyNames: Map<string, string>): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const l of logs) {
    lines.push(
      [
        field(l.request_id, true),
        field(l.created_at),
        field(l.key_id),
        field(keyNames.get(l.key_id) ?? null, true),
        field(l.model, true),
        field(l.provider, true),
        field(l.status),
        field(l.error_code, true),
        field(l.prompt_tokens),
        field(l.completion_tokens),
        field(l.cost_micros),
        field(usd(l.cost_micros).replace(/[$,]/g, '')),
        field(l.latency_ms),
        field(l.stream),
        field(l.usage_source),
      ].join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}

export function download(name: string, text: string, type = 'text/csv;charset=utf-8'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
