import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { errorMessage } from './api';
import { localDateTime, usd, usdCents, utcDateTime } from './format';

/** Exact micro-USD amount; `rounded` shows cents with the exact value on hover. */
export function Money({ micros, rounded = false, testId }: { micros: number; rounded?: boolean; testId?: string }) {
  const exact = usd(micros);
  if (!rounded) {
    return (
      <span className="money" data-micros={micros} data-testid={testId}>
        {exact}
      </span>
    );
  }
  return (
    <span className="money" title={exact} data-micros={micros} data-testid={testId}>
      {usdCents(micros)}
    </span>
  );
}

/** A date in the user's time zone, UTC on hover. */
export function DateTime({ iso }: { iso: string | null }) {
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={utcDateTime(iso)}>
      {localDateTime(iso)}
    </time>
  );
}

export function ErrorText({ error, id }: { error: unknown; id?: string }) {
  if (!error) return null;
  return (
    <p className="error" role="alert" id={id}>
      {typeof error === 'string' ? error : errorMessage(error)}
    </p>
  );
}

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // no clipboard permission (or an insecure origin): the selection fallback
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'offscreen';
    document.body.appendChild(area);
    area.select();
    let ok: boolean;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

export function CopyButton({ text, label = 'Copy', what }: { text: string; label?: string; what: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  useEffect(() => {
    if (state === 'idle') return;
    const t = setTimeout(() => setState('idle'), 2000);
    return () => clearTimeout(t);
  }, [state]);
  return (
    <button
      type="button"
      className="secondary small"
      aria-label={`${label} ${what}`}
      onClick={() => void copyText(text).then((ok) => setState(ok ? 'copied' : 'failed'))}
    >
      {state === 'copied' ? 'Copied' : state === 'failed' ? 'Select and copy' : label}
      <span className="visually-hidden" aria-live="polite">
        {state === 'copied' ? `${what} copied` : ''}
      </span>
    </button>
  );
}

export function CodeBlock({ code, what }: { code: string; what: string }) {
  return (
    <div className="code">
      <div className="code-bar">
        <span>{what}</span>
        <CopyButton text={code} what={what} />
      </div>
      <pre tabIndex={0}>
        <code>{code}</code>
      </pre>
    </div>
  );
}

/** A modal dialog (the native element: focus trapped, Escape closes). */
export function Dialog({ open, title, onClose, children }: { open: boolean; title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      {open && (
        <>
          <h2 id={titleId}>{title}</h2>
          {children}
        </>
      )}
    </dialog>
  );
}

export function Field({
  label,
  error,
  hint,
  children,
}: {
  label: string;
  error?: string | null;
  hint?: ReactNode;
  children: (props: { id: string; 'aria-invalid': boolean; 'aria-describedby'?: string }) => ReactNode;
}) {
  const id = useId();
  const describedBy = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(' ') || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, 'aria-invalid': Boolean(error), 'aria-describedby': describedBy })}
      {hint && (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p className="error" id={`${id}-error`} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

export interface AsyncState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Loads on mount and whenever `deps` change; `reload()` loads again. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: null,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  // the caller names what the load depends on, as with useEffect
  const run = useCallback(load, deps);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    run().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error: unknown) => live && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      live = false;
    };
  }, [run, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

/** The drawing width inside the chart's box (its padding excluded), so the plot never widens its box. */
function chartWidth(el: HTMLElement): number {
  const style = getComputedStyle(el);
  return Math.max(240, Math.floor(el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)));
}

/** Dollars on an axis: micro-dollars when the amounts are that small. */
export function axisDollars(v: number): string {
  if (v === 0) return '$0';
  return Math.abs(v) < 0.01 ? `$${v.toFixed(6)}` : `$${v.toFixed(2)}`;
}

const INTEGER_STEPS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 1e7, 1e8, 1e9,
];

export interface ChartSeries {
  label: string;
  values: number[];
  /** how a value reads in the legend and axis */
  format: (v: number) => string;
  color: string;
  /** counts: axis ticks at whole numbers only */
  integer?: boolean;
}

/**
 * A bar chart drawn by uPlot: x is a category (a day, a model, a key), one or two series share
 * the x axis, each with its own y scale. Values are for the eye; the tables carry exact amounts.
 */
export function BarChart({
  title,
  labels,
  series,
  height = 220,
}: {
  title: string;
  labels: string[];
  series: ChartSeries[];
  height?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el || labels.length === 0) return;
    const xs = labels.map((_, i) => i);
    const bars = uPlot.paths.bars!({ size: [series.length > 1 ? 0.4 : 0.6, 60], align: 0 });
    const options: uPlot.Options = {
      width: chartWidth(el),
      height,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: false, range: [-0.5, labels.length - 0.5] },
        ...Object.fromEntries(
          series.map((_, i) => [
            `y${i}`,
            { range: (_u: uPlot, _min: number, max: number) => [0, max > 0 ? max * 1.1 : 1] as uPlot.Range.MinMax },
          ]),
        ),
      },
      axes: [
        {
          values: (_u, splits) => splits.map((v) => (Number.isInteger(v) && labels[v] !== undefined ? labels[v] : '')),
          splits: () => xs,
          gap: 4,
          rotate: labels.length > 8 ? -45 : 0,
          size: labels.length > 8 ? 70 : 40,
        },
        ...series.map((s, i) => ({
          scale: `y${i}`,
          side: i === 0 ? 3 : 1,
          values: (_u: uPlot, splits: number[]) => splits.map(s.format),
          size: 84,
          grid: { show: i === 0 },
          ...(s.integer ? { incrs: INTEGER_STEPS } : {}),
        })),
      ],
      series: [
        { label: title, value: (_u, v) => (v === null || labels[v] === undefined ? '' : labels[v]) },
        ...series.map((s, i) => ({
          label: s.label,
          scale: `y${i}`,
          stroke: s.color,
          fill: `${s.color}99`,
          paths: series.length > 1 ? uPlot.paths.bars!({ size: [0.4, 60], align: i === 0 ? -1 : 1 }) : bars,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v === null ? '—' : s.format(v)),
        })),
      ],
    };
    const plot = new uPlot(options, [xs, ...series.map((s) => s.values)], el);
    const resize = new ResizeObserver(() => plot.setSize({ width: chartWidth(el), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [labels, series, height, title]);
  if (labels.length === 0) return <p className="muted">No usage in this range yet.</p>;
  return (
    <div
      className="chart"
      ref={box}
      role="img"
      aria-label={`Chart of ${series.map((s) => s.label.toLowerCase()).join(' and ')} by ${title.toLowerCase()}`}
    />
  );
}
