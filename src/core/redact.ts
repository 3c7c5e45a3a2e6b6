/**
 * The one redactor for logs. Callers should log names, never secret values; this is the net
 * under that rule, for a header map, a config object or a URL that slipped into a field.
 */

export const REDACTED = '[REDACTED]';

/**
 * Field names whose values never reach a log line (compared lower-case, without "-" and "_"):
 * HTTP credentials, tokens, passwords, keys.
 */
export const REDACTED_KEYS: readonly string[] = [
  'authorization', 'proxyauthorization', 'cookie', 'setcookie', 'xapikey', 'apikey',
  'token', 'accesstoken', 'refreshtoken', 'bottoken', 'admintoken', 'webhooktoken', 'apitoken', 'idtoken',
  'password', 'passwd', 'secret', 'clientsecret', 'routingkey', 'integrationkey', 'privatekey', 'webhookbasicauth', 'basicauth',
];
const keys = new Set(REDACTED_KEYS);
// Names ending like a credential (slackBotToken, PAGERDUTY_API_TOKEN, dbPassword); "*_env" names an
// environment variable, which is not the secret itself.
const suffix = /(token|password|secret|apikey|routingkey)$/;

function secretKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[-_]/g, '');
  return keys.has(k) || (suffix.test(k) && !k.endsWith('env'));
}

// scheme://user:password@host -> scheme://user:[REDACTED]@host; "Bearer abc…" / "Basic abc…" (header style) -> "Bearer [REDACTED]".
const urlPassword = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*):[^\s/?#@]*@/gi;
const authScheme = /\b([Bb]earer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g;

export function redactText(s: string): string {
  return s.replace(urlPassword, `$1:${REDACTED}@`).replace(authScheme, `$1 ${REDACTED}`);
}

/** A copy of `value` safe to log: secret keys blanked, text scrubbed, errors as name, message and stack. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8) return '[too deep]';
  if (value instanceof Error) {
    const out: Record<string, unknown> = { type: value.name, message: redactText(value.message) };
    if (value.stack) out.stack = redactText(value.stack);
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    if (value.cause !== undefined) out.cause = redact(value.cause, depth + 1);
    return out;
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Map) return redact(Object.fromEntries(value), depth + 1);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = secretKey(k) ? REDACTED : redact(v, depth + 1);
  return out;
}

/** A URL without its password, for logs and errors. */
export function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * Text that came back from a service, with the secrets we sent it blanked out: a service should
 * never echo a routing key or a token, but its error text goes to the audit, so this is the net.
 */
export function redactSecrets(text: string, ...secrets: (string | undefined)[]): string {
  return secrets.reduce<string>((t, s) => (s && s.length >= 4 ? t.split(s).join(REDACTED) : t), text);
}
