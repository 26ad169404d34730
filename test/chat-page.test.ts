/// <reference lib="dom" />
/**
 * The chat page (`GET /`), driven in a real headless Chromium (Debian's `chromium`, through
 * puppeteer-core): signing in with a token typed into the page, sending a message and seeing the
 * reply stream in (over the WebSocket) with its tool call, reloading and finding the conversation
 * again, paging. Then what the
 * server promises about the page: where it is served, with which headers, and never in
 * production unless `CHAT_PAGE=on`.
 *
 * Without `/usr/bin/chromium` the browser tests are skipped, except in CI (`CI` set), where they
 * must run. `CHAT_PAGE_SCREENSHOT=docs/chat-page.png` saves a picture of the page after a turn.
 */
import { existsSync } from 'node:fs';
import { createServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OfflineAgent } from '../src/agent/offline.js';
import type { Agent, AgentInput, AgentReply } from '../src/agent/types.js';
import { loadConfig } from '../src/config.js';
import { chatPageRouter } from '../src/http/page.js';
import { request } from './support/http.js';
import { startTestServer, type TestServer } from './support/server.js';

const CHROMIUM = '/usr/bin/chromium';
const SKIP_BROWSER = !existsSync(CHROMIUM) && !process.env.CI;
if (SKIP_BROWSER) console.warn(`chat-page: ${CHROMIUM} is absent, the browser tests are skipped (apt-get install chromium)`);

/** Longest wait for anything on the page. */
const WAIT_MS = 20_000;

/**
 * The offline agent, its reply's pieces given `paceMs` apart as a model writes them: a turn's text
 * is written at most every 250 ms, so that pieces further apart reach the page as separate events.
 */
class PacedAgent implements Agent {
  readonly name = 'offline';
  paceMs = 0;
  /** Set: the next turn fails (the model is down) after the first piece of its reply. */
  failNext = false;
  private readonly inner = new OfflineAgent();

  async run(input: AgentInput): Promise<AgentReply> {
    const pieces: string[] = [];
    const reply = await this.inner.run({ ...input, onText: (piece) => pieces.push(piece) });
    for (const piece of pieces) {
      if (this.paceMs > 0) await new Promise((resolve) => setTimeout(resolve, this.paceMs));
      input.onText?.(piece);
      if (this.failNext) {
        this.failNext = false;
        throw new Error('the model stopped answering');
      }
    }
    return reply;
  }
}

const agent = new PacedAgent();
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ agent });
});

afterAll(async () => {
  await server?.close();
});

describe.skipIf(SKIP_BROWSER)(`the chat page in headless Chromium (${CHROMIUM})`, () => {
  let browser: Browser;
  /** What the pages logged as errors, and scripts that threw: none is expected. */
  const pageErrors: string[] = [];

  beforeAll(async () => {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true, // --headless=new
      args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
      timeout: 60_000,
    });
  });

  afterAll(async () => {
    await browser?.close();
  });

  /**
   * A fresh tab in its own browser context (no shared sessionStorage), 1200×800, watched for
   * errors, at the page; `watchSockets`: its WebSockets listed in `window.sockets`.
   */
  async function openPage({ watchSockets = false } = {}): Promise<Page> {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    // Every WebSocket the page opens, kept where the test can reach it (to cut one).
    if (watchSockets) {
      await page.evaluateOnNewDocument(() => {
        const sockets: WebSocket[] = [];
        Object.assign(window, { sockets });
        window.WebSocket = class extends window.WebSocket {
          constructor(...args: ConstructorParameters<typeof WebSocket>) {
            super(...args);
            sockets.push(this);
          }
        };
      });
    }
    page.setDefaultTimeout(WAIT_MS);
    await page.setViewport({ width: 1200, height: 800 });
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${(error as Error).message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
    });
    await page.goto(`${server.url}/`, { waitUntil: 'load' });
    return page;
  }

  async function signIn(page: Page, userId: string): Promise<void> {
    await page.type('#token', await server.token(userId));
    await page.click('#sign-in button[type=submit]');
    await page.waitForSelector('#signed-in:not([hidden])');
    expect(await page.$eval('#viewer-id', (e) => e.textContent)).toBe(userId);
  }

  /** The messages shown: role, status, text and tool calls (name, arguments and result as shown). */
  function shownMessages(page: Page) {
    return page.$$eval('#message-list > .message', (items) =>
      items.map((item) => ({
        role: (item as HTMLElement).dataset.role,
        status: (item as HTMLElement).dataset.status,
        text: item.querySelector('.content')?.textContent ?? '',
        toolCalls: [...item.querySelectorAll('.tool-call')].map((call) => ({
          name: (call as HTMLElement).dataset.name,
          state: (call as HTMLElement).dataset.state,
          arguments: call.querySelector('.tool-arguments')?.textContent ?? '',
          result: call.querySelector('.tool-result')?.textContent ?? '',
        })),
      })),
    );
  }

  it('signs in with a typed token, sends a message, streams in the reply and its add_task call, and shows them again after a reload', async () => {
    const page = await openPage();
    // The test server has no dev token: the box starts empty, and the page holds no token.
    expect(await page.$eval('#token', (e) => (e as HTMLInputElement).value)).toBe('');
    expect(await page.$('meta[name="dev-token"]')).toBeNull();
    await signIn(page, 'page-user');

    agent.paceMs = 400;
    await page.type('#message', 'add a task to buy milk');
    await page.keyboard.press('Enter');
    // The reply streams in: the tool call shows with its arguments and result while the text is
    // still being written, and the text grows piece by piece.
    const reply = '#message-list > .message.assistant';
    await page.waitForSelector(`${reply}[data-status="IN_PROGRESS"] .tool-call[data-state="done"]`);
    const partial = await (
      await page.waitForFunction(
        (selector) => {
          const message = document.querySelector(selector);
          const text = message?.querySelector('.content')?.textContent;
          return message?.getAttribute('data-status') === 'IN_PROGRESS' && text ? text : false;
        },
        {},
        reply,
      )
    ).jsonValue();
    await page.waitForSelector(`${reply}[data-status="COMPLETE"]`);
    agent.paceMs = 0;
    const afterTurn = await shownMessages(page);
    const finalText = afterTurn[1]?.text ?? '';
    expect(typeof partial === 'string' && finalText.startsWith(partial) && partial.length < finalText.length).toBe(true);
    expect(await page.evaluate(() => document.body.dataset.streaming)).toBe('true');
    expect(Number(await page.$eval(reply, (e) => (e as HTMLElement).dataset.textDeltas))).toBeGreaterThan(1);
    expect(afterTurn).toEqual([
      { role: 'user', status: 'COMPLETE', text: 'add a task to buy milk', toolCalls: [] },
      {
        role: 'assistant',
        status: 'COMPLETE',
        text: expect.stringContaining('buy milk'),
        toolCalls: [
          {
            name: 'add_task',
            state: 'done',
            arguments: expect.stringContaining('"buy milk"'),
            result: expect.stringContaining('buy milk'),
          },
        ],
      },
    ]);
    // What the page shows is what is stored.
    const stored = await server.db.query(
      "select m.content, t.name, t.arguments from message m join tool_call t on t.message_id = m.id where m.user_id = 'page-user'",
    );
    expect(stored.rows).toEqual([{ content: afterTurn[1]?.text, name: 'add_task', arguments: { title: 'buy milk' } }]);
    const conversationId = await page.$eval('#conversations > li', (e) => (e as HTMLElement).dataset.conversationId);
    expect(page.url()).toBe(`${server.url}/#c=${conversationId}`);

    if (process.env.CHAT_PAGE_SCREENSHOT) await page.screenshot({ path: process.env.CHAT_PAGE_SCREENSHOT as `${string}.png` });

    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('#message-list > .message.assistant');
    expect(await page.$$eval('#conversations > li', (items) => items.map((e) => (e as HTMLElement).dataset.conversationId))).toEqual([
      conversationId,
    ]);
    expect(await shownMessages(page)).toEqual(afterTurn);
    expect(pageErrors).toEqual([]);
    await page.browserContext().close();
  });

  it('resumes a reply whose WebSocket dropped mid-turn after the last event it had, missing nothing and showing nothing twice', async () => {
    const page = await openPage({ watchSockets: true });
    await signIn(page, 'page-resume');
    agent.paceMs = 400;
    await page.type('#message', 'add a task to water the plants');
    await page.keyboard.press('Enter');
    const reply = '#message-list > .message.assistant';
    await page.waitForFunction(
      (selector) => Boolean(document.querySelector(`${selector}[data-status="IN_PROGRESS"] .content`)?.textContent),
      {},
      reply,
    );
    // The connection drops (as on a network change) while the reply is still being written.
    const deltasBefore = await page.$eval(reply, (e) => {
      (window as unknown as { sockets: WebSocket[] }).sockets.at(-1)?.close();
      return Number((e as HTMLElement).dataset.textDeltas);
    });
    await page.waitForSelector(`${reply}[data-status="COMPLETE"]`);
    agent.paceMs = 0;
    expect(await page.evaluate(() => (window as unknown as { sockets: WebSocket[] }).sockets.length)).toBe(2);
    // Every TEXT_DELTA the turn wrote was applied once: some before the drop, the rest after it.
    const deltas = await server.db.query(
      "select count(*)::int as n from conversation_event where user_id = 'page-resume' and kind = 'text_delta'",
    );
    const total = deltas.rows[0]?.n as number;
    expect(deltasBefore).toBeGreaterThan(0);
    expect(deltasBefore).toBeLessThan(total);
    expect(await page.$eval(reply, (e) => Number((e as HTMLElement).dataset.textDeltas))).toBe(total);
    const stored = await server.db.query("select content from message where user_id = 'page-resume' and role = 'assistant'");
    expect(await page.$eval(`${reply} .content`, (e) => e.textContent)).toBe(stored.rows[0]?.content);
    expect(pageErrors).toEqual([]);
    await page.browserContext().close();
  });

  it('shows a turn that fails as it streams: the text so far, the error code, and the message box usable again', async () => {
    const page = await openPage();
    await signIn(page, 'page-failure');
    agent.failNext = true;
    await page.type('#message', 'add a task to fix the bike');
    await page.keyboard.press('Enter');
    const reply = '#message-list > .message.assistant';
    await page.waitForSelector(`${reply}[data-status="FAILED"]`);
    const shown = await page.$eval(reply, (e) => ({
      note: e.querySelector('.note')?.textContent,
      toolCalls: [...e.querySelectorAll('.tool-call')].map((call) => (call as HTMLElement).dataset.state),
    }));
    expect(shown).toEqual({ note: expect.stringContaining('UPSTREAM_ERROR'), toolCalls: ['done'] });
    // The reply shows FAILED as the event arrives; the box is given back once the send has settled.
    await page.waitForSelector('#send:not([disabled])');
    expect(await page.$eval('#message', (e) => (e as HTMLTextAreaElement).disabled)).toBe(false);
    const stored = await server.db.query("select status from message where user_id = 'page-failure' order by seq");
    expect(stored.rows).toEqual([{ status: 'complete' }, { status: 'failed' }]);
    expect(pageErrors).toEqual([]);
    await page.browserContext().close();
  });

  it('prefills the sign-in box with the dev token the server put in the page', async () => {
    const withToken = await listen(chatPageRouter({ devToken: 'dev.token.of-demo' }));
    try {
      const context = await browser.createBrowserContext();
      const page = await context.newPage();
      await page.goto(withToken.url, { waitUntil: 'load' });
      await page.waitForFunction(() => (document.getElementById('token') as HTMLInputElement).value !== '');
      expect(await page.$eval('#token', (e) => (e as HTMLInputElement).value)).toBe('dev.token.of-demo');
      await context.close();
    } finally {
      await withToken.close();
    }
  });

  it('shows markup in messages and tool calls as text, never as HTML', async () => {
    const page = await openPage();
    await signIn(page, 'page-markup');
    const hostile = 'add a task to <img src=x onerror="window.hacked=1"><b>bold</b>';
    await page.type('#message', hostile);
    await page.click('#send');
    await page.waitForSelector('#message-list > .message.assistant[data-status="COMPLETE"]');
    const shown = await shownMessages(page);
    expect(shown[0]?.text).toBe(hostile);
    expect(shown[1]?.toolCalls[0]?.arguments).toContain('<b>bold</b>');
    expect(await page.$$('#message-list img, #message-list b, #conversations img')).toEqual([]);
    expect(await page.evaluate(() => (window as { hacked?: number }).hacked)).toBeUndefined();
    await page.browserContext().close();
  });

  it('pages the conversations with "More" and the messages backwards on scrolling up', async () => {
    const user = 'page-pager';
    const client = await server.client(user);
    // 21 conversations (one more than a page), the newest with 12 turns: 24 messages, 4 more than a page.
    for (let i = 1; i <= 20; i++)
      await client.request('mutation($t: String) { createConversation(input: { title: $t }) { id } }', { t: `c${i}` });
    let conversationId: string | null = null;
    for (let turn = 1; turn <= 12; turn++) {
      const sent: { sendMessage: { conversation: { id: string } } } = await client.request(
        'mutation($id: ID, $m: String!) { sendMessage(input: { conversationId: $id, message: $m }) { conversation { id } } }',
        { id: conversationId, m: `add a task to do thing ${turn}` },
      );
      conversationId = sent.sendMessage.conversation.id;
    }

    const page = await openPage();
    await signIn(page, user);
    const listed = () => page.$$eval('#conversations > li', (items) => items.map((e) => (e as HTMLElement).dataset.conversationId));
    expect(await listed()).toHaveLength(20);
    expect((await listed())[0]).toBe(conversationId);
    await page.click('#more-conversations');
    await page.waitForFunction(() => document.querySelectorAll('#conversations > li').length === 21);
    expect(await page.$eval('#more-conversations', (e) => (e as HTMLElement).hidden)).toBe(true);

    await page.click(`#conversations > li[data-conversation-id="${conversationId}"] button`);
    await page.waitForFunction(() => document.querySelectorAll('#message-list > .message').length === 20);
    const seqOfFirst = () => page.$eval('#message-list > .message .content', (e) => e.textContent);
    expect(await seqOfFirst()).toBe('add a task to do thing 3');
    // Scrolled to the bottom on opening; scrolling to the top loads the 4 older messages.
    await page.$eval('#messages', (e) => e.scrollTo({ top: 0 }));
    await page.waitForFunction(() => document.querySelectorAll('#message-list > .message').length === 24);
    expect(await seqOfFirst()).toBe('add a task to do thing 1');
    expect(await page.$eval('#older-messages', (e) => (e as HTMLElement).hidden)).toBe(true);
    expect(pageErrors).toEqual([]);
    await page.browserContext().close();
  });
});

describe('where the chat page is served', () => {
  it('serves GET / as HTML under a strict Content-Security-Policy, and its files under /page/ with their content types', async () => {
    const page = await request(`${server.url}/`, {});
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-store');
    const csp = page.headers.get('content-security-policy') ?? '';
    const host = new URL(server.url).host;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain(`connect-src 'self' ws://${host} wss://${host}`);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(page.text).toContain('<script type="module" src="/page/app.js"></script>');
    expect(page.text).not.toContain('dev-token');

    for (const [file, type] of [
      ['app.js', 'text/javascript; charset=utf-8'],
      ['api.js', 'text/javascript; charset=utf-8'],
      ['stream.js', 'text/javascript; charset=utf-8'],
      ['view.js', 'text/javascript; charset=utf-8'],
      ['style.css', 'text/css; charset=utf-8'],
      ['favicon.svg', 'image/svg+xml'],
    ]) {
      const answer = await request(`${server.url}/page/${file}`, {});
      expect({ file, status: answer.status, type: answer.headers.get('content-type') }).toEqual({ file, status: 200, type });
    }
    // The HTML is only ever served by GET / (where a dev token would be put in); unknown files are the usual 404.
    for (const path of ['/page/index.html', '/page/', '/page/nope.js', '/index.html']) {
      const answer = await request(`${server.url}${path}`, {});
      expect({ path, status: answer.status, body: answer.body }).toEqual({
        path,
        status: 404,
        body: { error: { code: 'NOT_FOUND', message: 'No such route' } },
      });
    }
  });

  it('answers GET / with a 404 JSON error in production, unless CHAT_PAGE=on', async () => {
    const production = await startTestServer({ database: server.database, env: { NODE_ENV: 'production' } });
    const forced = await startTestServer({ database: server.database, env: { NODE_ENV: 'production', CHAT_PAGE: 'on' } });
    try {
      for (const path of ['/', '/page/app.js']) {
        const answer = await request(`${production.url}${path}`, {});
        expect({ status: answer.status, body: answer.body }).toEqual({
          status: 404,
          body: { error: { code: 'NOT_FOUND', message: 'No such route' } },
        });
      }
      const page = await request(`${forced.url}/`, {});
      expect(page.status).toBe(200);
      expect(page.text).not.toContain('dev-token');
    } finally {
      await production.close();
      await forced.close();
    }
    expect(loadConfig({ NODE_ENV: 'development' }).chatPage).toBe(true);
    expect(loadConfig({ NODE_ENV: 'development', CHAT_PAGE: 'off' }).chatPage).toBe(false);
    expect(() => loadConfig({ CHAT_PAGE: 'yes' })).toThrow(/CHAT_PAGE/);
  });

  it('puts a dev token in the page as an escaped <meta> only when it is given, and only for a loopback Host', async () => {
    const withToken = await listen(chatPageRouter({ devToken: 'abc."<&>\'' }));
    const without = await listen(chatPageRouter({}));
    try {
      const page = await request(withToken.url, {});
      expect(page.text).toContain('<meta name="dev-token" content="abc.&#34;&#60;&#38;&#62;&#39;">');
      const plain = await request(without.url, {});
      expect(plain.text).not.toMatch(/dev-token/);
      expect(plain.text).not.toContain('<!--');
      // Another name pointed at 127.0.0.1 (DNS rebinding) gets the page without the token.
      for (const [host, hasToken] of [
        ['localhost:4000', true],
        ['[::1]:4000', true],
        ['127.0.0.1', true],
        ['attacker.example:4000', false],
        ['127.0.0.1.attacker.example', false],
      ] as const) {
        const page = await getWithHost(withToken.url, host);
        expect({ host, hasToken: page.includes('name="dev-token"') }).toEqual({ host, hasToken });
      }
    } finally {
      await withToken.close();
      await without.close();
    }
  });
});

/** The body of a GET of `url` sent with the Host header `host` (fetch does not let one choose it). */
function getWithHost(url: string, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
  });
}

/** A bare express app around `router`, on a free loopback port. */
async function listen(router: express.Router): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.use(router);
  const http: Server = createServer(app);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((resolve) => http.close(() => resolve())),
  };
}
