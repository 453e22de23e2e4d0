import type { LoggerService, LogLevel } from '@nestjs/common';
import pino, { DestinationStream, Level, Logger as Pino } from 'pino';
import { currentRequestId, type RequestTag } from '../common/http/request-scope';

export type LogFormat = 'json' | 'text';

export interface AppLoggerOptions {
  /** The least severe level written (LOG_LEVEL). */
  level: 'error' | 'warn' | 'log' | 'debug';
  /** One JSON object per line (production, tests) or a short line of text (development). */
  format: LogFormat;
  /** Values that must never be written (admin token, provider keys, ...): replaced where they appear in a message. */
  secrets?: Array<string | null | undefined>;
  /** Where lines go; stdout, written asynchronously, unless given (tests). */
  destination?: DestinationStream;
}

/** One line per request, written when its response has finished (or its client left). */
export interface AccessLine {
  method: string;
  route: string;
  status: number;
  latency_ms: number;
  request_id: string;
  key_id?: string;
  workspace_id?: string;
  model?: string;
}

const PINO_LEVEL: Record<AppLoggerOptions['level'], Level> = { error: 'error', warn: 'warn', log: 'info', debug: 'debug' };
/** API keys, whatever else a message holds (`nxr_` + 49 base62 characters). */
const API_KEY_PATTERN = /\bnxr_[0-9A-Za-z]{8,}/g;
const BEARER_PATTERN = /\b(Bearer\s+)[^\s"',;]+/gi;
const MIN_SECRET_LENGTH = 8;

/**
 * The process's logger: pino behind Nest's LoggerService, so `new Logger(Context)` calls in every
 * module and Nest's own lines go through it (app.useLogger). Lines are written asynchronously
 * (never blocking a request on stdout) and flushed before the process exits. A line about a
 * request carries its `request_id`: from the RequestScope storage on Express routes, from a
 * `tagOf(id)` parameter on the proxy routes. Messages are scrubbed of API keys, bearer tokens
 * and the configured secrets before they are written.
 */
export class AppLogger implements LoggerService {
  readonly pino: Pino;
  private readonly destination: DestinationStream;
  private readonly secrets: string[];

  constructor(options: AppLoggerOptions) {
    this.secrets = [...new Set(options.secrets?.filter((s): s is string => !!s && s.length >= MIN_SECRET_LENGTH))];
    const stdout = options.destination ?? pino.destination({ dest: 1, sync: false });
    this.destination = options.format === 'text' && !options.destination ? new TextLines(stdout) : stdout;
    this.pino = pino(
      {
        level: PINO_LEVEL[options.level],
        messageKey: 'msg',
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        mixin: () => {
          const requestId = currentRequestId();
          return requestId ? { request_id: requestId } : {};
        },
      },
      this.destination,
    );
  }

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  /** LOG_LEVEL is the process's; Nest's own attempts to change it are ignored. */
  setLogLevels(_levels: LogLevel[]): void {}

  /** The access line of one request (built from known fields only: nothing to scrub). */
  access(line: AccessLine): void {
    if (this.pino.isLevelEnabled('info')) this.pino.info({ context: 'http', ...line }, 'request');
  }

  /** Writes out what is buffered (before the process exits). */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 1_000);
      this.pino.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Nest's convention: the last string parameter is the context; for errors, one before it a
   * stack. A `tagOf(id)` parameter puts its request id on the line.
   */
  private write(level: Level, message: unknown, params: unknown[]): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const rest = [...params];
    const context = rest.length > 0 && typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const fields: Record<string, unknown> = {};
    if (context) fields.context = context;
    const tag = rest.find((p): p is RequestTag => typeof (p as RequestTag | null)?.request_id === 'string');
    if (tag) fields.request_id = tag.request_id;
    if (level === 'error' || level === 'fatal') {
      const stack = rest.find((p): p is string => typeof p === 'string');
      if (stack) fields.stack = this.scrub(stack);
    }
    if (message instanceof Error) {
      fields.stack = this.scrub(message.stack ?? '');
      this.pino[level](fields, this.scrub(message.message));
    } else if (typeof message === 'object' && message !== null) {
      this.pino[level](fields, this.scrub(JSON.stringify(message)));
    } else {
      this.pino[level](fields, this.scrub(String(message)));
    }
  }

  private scrub(text: string): string {
    let out = text.replace(API_KEY_PATTERN, 'nxr_[redacted]').replace(BEARER_PATTERN, '$1[redacted]');
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join('[redacted]');
    return out;
  }
}

/** Development output: `12:00:00.123 INFO [Context] message key=value`, written by the async stdout stream. */
class TextLines implements DestinationStream {
  constructor(private readonly out: DestinationStream) {}

  write(json: string): void {
    let line = json;
    try {
      const { level, time, msg, context, stack, pid: _pid, hostname: _host, ...rest } = JSON.parse(json) as Record<string, unknown>;
      const extras = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      const clock = typeof time === 'string' ? time.slice(11, 23) : '';
      const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
      const head = `${clock} ${text(level).toUpperCase().padEnd(5)} ${context ? `[${text(context)}] ` : ''}${text(msg)}`;
      line = `${head}${extras ? ` ${extras}` : ''}${stack ? `\n${text(stack)}` : ''}\n`;
    } catch {
      // not JSON: written as it came
    }
    this.out.write(line);
  }

  flush(cb: (err?: Error) => void): void {
    const out = this.out as DestinationStream & { flush?: (cb: (err?: Error) => void) => void };
    if (out.flush) out.flush(cb);
    else cb();
  }
}
