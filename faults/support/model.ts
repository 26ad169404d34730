/**
 * A slow, deterministic OpenAI-compatible model for the fault runs: `POST /v1/chat/completions`
 * on 127.0.0.1. Unlike test/support/fake-openai.ts (a queue of scripted steps, one per request),
 * what it does is read from the request itself, so that any number of concurrent turns on any
 * instance each get their own behaviour: the text of the last user message carries directives.
 *
 * - `#task:<title>`  the first step asks for `add_task {title}` (call id derived from the message);
 *                    once the context holds a tool result after that user message, it answers text.
 *                    So a retry whose context carries the earlier call and result does not ask again.
 * - `#delay:<ms>`    every text answer for this message comes `ms` after the request.
 * - `#delay1:<ms>`   only the first text answer for this message is delayed (a step to kill).
 *
 * The text answer is always `reply to: <message>`, so a stored reply can be checked against the
 * message it answers. Every request is recorded (message, step, whether a tool result was in the
 * context, whether the client hung up before the answer), and a test can wait for a request.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type ChatMessage = { role: string; content?: string | null; tool_call_id?: string };

export type ModelRequest = {
  /** The last user message of the context. */
  message: string;
  /** `tool`: answered with a tool call; `text`: answered with the reply text. */
  step: 'tool' | 'text';
  /** A tool result follows the last user message in the context. */
  sawToolResult: boolean;
  at: number;
  /** The client closed the connection before the answer was sent. */
  abandoned: boolean;
};

export type FakeModel = {
  /** The base URL for the SDK, `/v1` included. */
  baseUrl: string;
  requests: ModelRequest[];
  /** Requests whose last user message is `message`. */
  requestsFor(message: string, step?: ModelRequest['step']): ModelRequest[];
  /** Resolves with the first request (past or future) matching `predicate`; rejects after `ms`. */
  waitFor(predicate: (request: ModelRequest) => boolean, ms: number): Promise<ModelRequest>;
  close(): Promise<void>;
};

const PATH = '/v1/chat/completions';

/** The reply text the fake gives to `message`. */
export const replyTo = (message: string) => `reply to: ${message}`;

/** Starts the fake on 127.0.0.1, port 0. */
export async function startFakeModel(): Promise<FakeModel> {
  const requests: ModelRequest[] = [];
  const textSteps = new Map<string, number>();
  const waiters = new Set<{ predicate: (request: ModelRequest) => boolean; resolve: (request: ModelRequest) => void }>();
  let served = 0;

  const server = createServer(async (req, res) => {
    if (req.method !== 'POST' || req.url !== PATH) return send(res, 404, { error: { message: `fake model serves POST ${PATH} only` } });
    let body: { model: string; messages: ChatMessage[]; stream?: boolean; stream_options?: { include_usage?: boolean } };
    try {
      body = JSON.parse(await readBody(req)) as typeof body;
    } catch {
      return; // the client went away while sending
    }
    const lastUser = body.messages.findLastIndex((message) => message.role === 'user');
    const message = String(body.messages[lastUser]?.content ?? '');
    const sawToolResult = body.messages.slice(lastUser + 1).some((m) => m.role === 'tool');
    const directives = parseDirectives(message);
    const step: ModelRequest['step'] = directives.task !== undefined && !sawToolResult ? 'tool' : 'text';
    const request: ModelRequest = { message, step, sawToolResult, at: Date.now(), abandoned: false };
    requests.push(request);
    for (const waiter of [...waiters]) {
      if (waiter.predicate(request)) {
        waiters.delete(waiter);
        waiter.resolve(request);
      }
    }

    let delay = 0;
    if (step === 'text') {
      const nth = (textSteps.get(message) ?? 0) + 1;
      textSteps.set(message, nth);
      delay = directives.delay ?? (nth === 1 ? (directives.delay1 ?? 0) : 0);
    }
    const n = ++served;
    const answer = () => {
      if (res.destroyed || res.writableEnded) return;
      const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
      const toolCall = {
        id: `call_${createHash('sha256').update(message).digest('hex').slice(0, 16)}`,
        type: 'function',
        function: { name: 'add_task', arguments: JSON.stringify({ title: directives.task }) },
      };
      const reply =
        step === 'tool'
          ? { role: 'assistant', content: null, refusal: null, tool_calls: [toolCall] }
          : { role: 'assistant', content: replyTo(message), refusal: null };
      const finishReason = step === 'tool' ? 'tool_calls' : 'stop';
      const head = { id: `chatcmpl-fault-${n}`, created: Math.floor(Date.now() / 1000), model: body.model };
      if (!body.stream) {
        send(res, 200, {
          ...head,
          object: 'chat.completion',
          choices: [{ index: 0, message: reply, logprobs: null, finish_reason: finishReason }],
          usage,
        });
        return;
      }
      // Streamed as the API streams it: the whole message in one delta, the finish reason, the usage, [DONE].
      const delta =
        step === 'tool' ? { role: 'assistant', tool_calls: [{ index: 0, ...toolCall }] } : { role: 'assistant', content: reply.content };
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        `data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices, ...extra })}\n\n`;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk([{ index: 0, delta, logprobs: null, finish_reason: null }]));
      res.write(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }]));
      if (body.stream_options?.include_usage) res.write(chunk([], { usage }));
      res.end('data: [DONE]\n\n');
    };
    if (delay === 0) return answer();
    const timer = setTimeout(answer, delay);
    res.once('close', () => {
      clearTimeout(timer);
      if (!res.writableEnded) request.abandoned = true;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;

  return {
    baseUrl,
    requests,
    requestsFor: (message, step) =>
      requests.filter((request) => request.message === message && (step === undefined || request.step === step)),
    waitFor(predicate, ms) {
      const seen = requests.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          predicate,
          resolve: (request: ModelRequest) => {
            clearTimeout(timer);
            resolve(request);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`the fake model saw no matching request within ${ms} ms; it saw ${requests.length} requests`));
        }, ms);
        waiters.add(waiter);
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The directives of a message: `#task:<title>`, `#delay:<ms>`, `#delay1:<ms>`. */
export function parseDirectives(message: string): { task?: string; delay?: number; delay1?: number } {
  const found: { task?: string; delay?: number; delay1?: number } = {};
  for (const [, name, value] of message.matchAll(/#(task|delay1|delay):(\S+)/g)) {
    if (name === 'task') found.task = value;
    else found[name as 'delay' | 'delay1'] = Number(value);
  }
  return found;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
