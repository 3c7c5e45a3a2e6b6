import { request } from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One HTTP request with node:http, for what fetch cannot do: choose the source address (a second
 * client on 127.0.0.2) and send the headers a browser sends (Origin, Sec-Fetch-Site). No redirects.
 */
export function httpRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.localAddress }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const form = { 'content-type': 'application/x-www-form-urlencoded' };

/** Logs in through the form; returns the cookie header to send and the session's CSRF token. */
export async function uiLogin(baseUrl: string, token: string, name = 'alice'): Promise<{ cookie: string; csrf: string }> {
  const res = await httpRequest(`${baseUrl}/ui/login`, { method: 'POST', headers: form, body: new URLSearchParams({ name, token }).toString() });
  if (res.status !== 303) throw new Error(`login as ${name} answered ${res.status}: ${res.body}`);
  const cookie = String(res.headers['set-cookie']).split(';')[0]!;
  // No token on the pages fails the tests that post forms; the others go on to what they check.
  return { cookie, csrf: await csrfOf(baseUrl, cookie).catch(() => '') };
}

/** The CSRF token in a session's pages (every form carries it). */
export async function csrfOf(baseUrl: string, cookie: string): Promise<string> {
  const page = await httpRequest(`${baseUrl}/ui`, { headers: { cookie, accept: 'text/html' } });
  const m = /name="csrf" value="([^"]+)"/.exec(page.body);
  if (!m) throw new Error(`no CSRF token on /ui (status ${page.status})`);
  return m[1]!;
}

/** Posts a form the way a browser on the status page does (same-origin). */
export function postForm(baseUrl: string, path: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return httpRequest(`${baseUrl}${path}`, { method: 'POST', headers: { ...form, 'sec-fetch-site': 'same-origin', ...headers }, body: new URLSearchParams(fields).toString() });
}
