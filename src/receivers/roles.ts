import type { NextFunction, Request, Response } from 'express';
import { safeEqual } from './auth.js';

/**
 * Who may do what on /ui and /api. A viewer (VIEWER_TOKEN) reads: the status page and the
 * read-only API. An operator (ADMIN_TOKEN) also pauses, resumes, lifts and approves.
 */
export type Role = 'viewer' | 'operator';

/** The two credentials; either may be unset (then that role cannot log in). */
export interface Tokens {
  admin?: string;
  viewer?: string;
}

/** The role a token grants, compared in constant time against both tokens. */
export function roleOfToken(token: string, tokens: Tokens): Role | undefined {
  if (!token) return undefined;
  // Both comparisons always run, so the time taken does not say which token was close.
  const operator = tokens.admin !== undefined && safeEqual(token, tokens.admin);
  const viewer = tokens.viewer !== undefined && safeEqual(token, tokens.viewer);
  return operator ? 'operator' : viewer ? 'viewer' : undefined;
}

/** The role of an `Authorization: Bearer` header, if it carries one of the tokens. */
export function bearerRole(header: string | undefined, tokens: Tokens): Role | undefined {
  const h = header ?? '';
  return h.toLowerCase().startsWith('bearer ') ? roleOfToken(h.slice(7).trim(), tokens) : undefined;
}

export const can = (role: Role | undefined, needed: Role): boolean => role === 'operator' || (role === 'viewer' && needed === 'viewer');

/**
 * Bearer-token middleware for /api: reads need a viewer or an operator, anything else an operator.
 * 401 for a missing or unknown token, 403 for a known token of too small a role.
 */
export function requireRole(tokens: Tokens, needed: Role | ((req: Request) => Role)) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!tokens.admin && !tokens.viewer) return void res.status(403).json({ error: 'admin API disabled: set ADMIN_TOKEN (and VIEWER_TOKEN for read-only access)' });
    const need = typeof needed === 'function' ? needed(req) : needed;
    const role = bearerRole(req.headers.authorization, tokens);
    if (!role) return void res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'missing or wrong token (ADMIN_TOKEN, or VIEWER_TOKEN for reads)' });
    if (!can(role, need)) return void res.status(403).json({ error: 'this needs the operator token (ADMIN_TOKEN); VIEWER_TOKEN only reads' });
    next();
  };
}

/** GET and HEAD only read; every other method changes something. */
export const readsOnly = (req: Request): Role => (req.method === 'GET' || req.method === 'HEAD' ? 'viewer' : 'operator');
