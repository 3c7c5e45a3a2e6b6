import { pino, type Logger as Pino } from 'pino';
import { redact, redactText } from './core/redact.js';

/**
 * JSON lines on stdout, written by pino: `{"level":"info","time":"…","msg":"…",…fields}`.
 * Every field goes through the redactor first (core/redact.ts): credentials by key name, passwords
 * in URLs and bearer tokens inside text, whatever the depth; Error values keep their stack.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/**
 * @param write where each line goes (without its newline); stdout when omitted. Tests collect lines.
 */
export function createLogger(
  level: Level | 'silent' = 'info',
  base: Record<string, unknown> = {},
  write?: (line: string) => void,
): Logger {
  const stream = write ? { write: (chunk: string) => write(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk) } : pino.destination({ fd: 1, sync: true });
  const p = pino(
    {
      level,
      base: null, // no pid/hostname: the container runtime adds where a line came from
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
  return wrap(Object.keys(base).length ? p.child(redact(base) as Record<string, unknown>) : p);
}

function wrap(p: Pino): Logger {
  const emit = (lvl: Level) => (msg: string, fields?: Record<string, unknown>) => {
    if (!p.isLevelEnabled(lvl)) return;
    // The message as the first field (pino would write it last): lines read, and grep, as before.
    const line: Record<string, unknown> = { msg: redactText(msg), ...(fields ? (redact(fields) as object) : {}) };
    line.msg = redactText(msg);
    p[lvl](line);
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => wrap(p.child(redact(fields) as Record<string, unknown>)),
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger('silent');
