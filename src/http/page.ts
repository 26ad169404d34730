/**
 * The chat page: `GET /` and the few static files under `/page/` (the package's `public/`
 * folder: plain ES modules and a style sheet, no build step). The page talks to the server only
 * through the public API, `/graphql` (queries and mutations over HTTP, events over a WebSocket),
 * exactly as any other client would.
 *
 * Mounted only when `config.chatPage` (`CHAT_PAGE`; on outside production unless set). A dev
 * token, when the app has one (`App.devToken`: loopback, the server's own dev secret), is put in
 * the served HTML to prefill the sign-in box, when the page is asked for by a loopback name; that
 * HTML is never cached.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Request, type Router } from 'express';

/** The marker in `public/index.html` that the dev token's `<meta>` element replaces (or nothing, without one). */
const DEV_TOKEN_MARKER = '<!-- dev-token -->';

export type PageOptions = {
  /** Put in the page to prefill the sign-in box; absent: the box starts empty and no token is in the HTML. */
  devToken?: string;
  /** The folder of the page's files (default: `public/` at the package root, from `src/http` and `dist/src/http` alike). */
  dir?: string;
};

/**
 * The router of the chat page. Reads `index.html` once, now, and fails fast when it is missing
 * or lacks the dev-token marker, so that a broken package stops the server at start.
 */
export function chatPageRouter(options: PageOptions = {}): Router {
  const dir = options.dir ?? path.join(packageRoot(), 'public');
  const file = path.join(dir, 'index.html');
  let template: string;
  try {
    template = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`CHAT_PAGE: cannot read the chat page ${JSON.stringify(file)} (set CHAT_PAGE=off to run without it)`, { cause: error });
  }
  if (!template.includes(DEV_TOKEN_MARKER)) throw new Error(`CHAT_PAGE: ${JSON.stringify(file)} lacks the marker ${DEV_TOKEN_MARKER}`);
  const plain = template.replace(DEV_TOKEN_MARKER, '');
  const withToken = options.devToken
    ? template.replace(DEV_TOKEN_MARKER, `<meta name="dev-token" content="${escapeAttribute(options.devToken)}">`)
    : plain;

  const router = express.Router();
  router.get('/', (req, res) => {
    res.set({
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': contentSecurityPolicy(req),
      // It may hold a dev token: kept by no cache, sent to no other site.
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
    });
    // Only to a page reached by a loopback name: another site's name pointed at 127.0.0.1 (DNS
    // rebinding) gets the page, but not the token.
    res.send(isLoopbackHost(req.headers.host) ? withToken : plain);
  });
  router.use(
    '/page',
    (req, res, next) => {
      res.set({ 'Content-Security-Policy': contentSecurityPolicy(req), 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' });
      next();
    },
    // `index.html` is only ever served by `GET /` (with or without the token), never as a file.
    (req, _res, next) => (req.path.endsWith('.html') ? next('router') : next()),
    express.static(dir, { index: false, redirect: false, dotfiles: 'deny', fallthrough: true, extensions: false }),
  );
  return router;
}

// Private: only this server's own files and API: scripts, styles and images from this origin,
// requests to this origin and WebSockets to the same host (older browsers do not count `ws:` as
// `'self'`).
function contentSecurityPolicy(req: Request): string {
  const host = req.headers.host;
  // A Host header is what the browser used to reach us; anything odd in it is simply left out.
  const sockets = host && /^[A-Za-z0-9.\-:[\]]+$/.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'self'",
    `connect-src 'self'${sockets}`,
    "img-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Whether a Host header names this machine's loopback (`127.0.0.1:4000`, `localhost`, `[::1]:4000`). */
export function isLoopbackHost(host: string | undefined): boolean {
  const name = host?.replace(/:\d+$/, '').toLowerCase();
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name ?? '');
}

// Private: the characters that could end or break an HTML attribute value, as entities.
function escapeAttribute(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Private: the nearest folder above this module holding a `package.json` (the checkout, or the
// installed package): `src/http` in tests, `dist/src/http` once built.
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`no package.json found above ${fileURLToPath(import.meta.url)}`);
}
