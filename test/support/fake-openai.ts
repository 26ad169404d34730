/**
 * A small OpenAI-compatible server for tests: `POST /v1/chat/completions` on a free loopback
 * port, answering in the Chat Completions JSON shape (`choices[0].message` with `content` and
 * `tool_calls`, `finish_reason`, `usage`). Each test scripts it: a queue of steps, each a reply,
 * an HTTP error or a delayed step, taken one per request; when the queue is empty the `otherwise`
 * step answers (by default a 500 that says the script ran out, so a test that asks more than it
 * scripted fails visibly). Every request body is kept, for assertions on what the model was sent.
 *
 * A request with `stream: true` is answered as OpenAI streams: Server-Sent Events, one
 * `chat.completion.chunk` per event, then `data: [DONE]`. A reply's text comes in several chunks,
 * each tool call as a first piece (id, name) and its arguments in fragments, then a chunk with the
 * finish reason, then (asked with `stream_options.include_usage`, and scripted) a usage chunk with
 * no choices. Errors stay HTTP errors; `cut` breaks a stream off in the middle.
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OfflineAgent } from '../../src/agent/offline.js';
import { OpenAiAgent } from '../../src/agent/openai-agent.js';
import type { Agent, AgentInput, AgentReply } from '../../src/agent/types.js';
import { createLogger } from '../../src/log.js';

export type FakeUsage = { prompt_tokens: number; completion_tokens: number; total_tokens: number };
export type FakeToolCall = { id: string; name: string; arguments: string };

export type FakeStep =
  | { kind: 'reply'; content: string | null; toolCalls: FakeToolCall[]; usage: FakeUsage | null; model?: string }
  | { kind: 'error'; status: number; headers: Record<string, string>; message: string }
  | { kind: 'delay'; ms: number; step: FakeStep }
  | { kind: 'cut'; content: string };

/** A request the fake received: its parsed JSON body and its headers. */
export type FakeRequest = { body: ChatRequestBody; headers: IncomingMessage['headers'] };

/** The parts of a Chat Completions request body the tests look at. */
export type ChatRequestBody = {
  model: string;
  messages: {
    role: string;
    content?: string | null;
    tool_call_id?: string;
    tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
  }[];
  tools?: { type: string; function: { name: string; description?: string; parameters?: unknown } }[];
  [field: string]: unknown;
};

/** A text answer (`finish_reason: stop`), with `usage` (default 10 + 5 tokens) and the `model` reported (default: the one asked for). */
export function reply(content: string, options: { usage?: FakeUsage | null; model?: string } = {}): FakeStep {
  return { kind: 'reply', content, toolCalls: [], usage: options.usage === undefined ? usage(10, 5) : options.usage, model: options.model };
}

/** Tool calls (`finish_reason: tool_calls`, no text), with `usage` (default 10 + 5 tokens). */
export function toolCalls(calls: FakeToolCall[], options: { usage?: FakeUsage | null; content?: string | null } = {}): FakeStep {
  return {
    kind: 'reply',
    content: options.content ?? null,
    toolCalls: calls,
    usage: options.usage === undefined ? usage(10, 5) : options.usage,
  };
}

/**
 * An HTTP error with an OpenAI error body. `retry-after-ms: 10` is sent unless `headers` say
 * otherwise, so that the SDK's retries (it honours the header) take milliseconds, not seconds.
 */
export function httpError(status: number, options: { headers?: Record<string, string>; message?: string } = {}): FakeStep {
  return {
    kind: 'error',
    status,
    headers: { 'retry-after-ms': '10', ...options.headers },
    message: options.message ?? `fake error ${status}`,
  };
}

/** `step`, answered `ms` milliseconds after the request came (nothing, if the client leaves first). */
export function delayed(ms: number, step: FakeStep): FakeStep {
  return { kind: 'delay', ms, step };
}

/**
 * A stream broken off: the headers and the first text chunks of `content` are sent, then the
 * connection is destroyed before the stream ends. A request that does not stream gets no answer at all.
 */
export function cutStream(content: string): FakeStep {
  return { kind: 'cut', content };
}

export function usage(prompt: number, completion: number): FakeUsage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

export type FakeOpenAi = {
  /** `http://127.0.0.1:<port>`; the SDK's base URL is `url + '/v1'`. */
  url: string;
  /** Every request received, oldest first. */
  requests: FakeRequest[];
  /** How many requests have been answered (their response sent) since the last `reset()`. */
  answered(): number;
  /** Appends steps to the queue. */
  script(...steps: FakeStep[]): void;
  /** The step that answers when the queue is empty (a model that keeps doing the same thing). */
  otherwise(step: FakeStep): void;
  /** Empties the queue and the requests, and restores the default `otherwise`. */
  reset(): void;
  close(): Promise<void>;
};

const PATH = '/v1/chat/completions';

/** Starts the fake on 127.0.0.1, port 0. */
export async function startFakeOpenAi(): Promise<FakeOpenAi> {
  const queue: FakeStep[] = [];
  const requests: FakeRequest[] = [];
  const ranOut = httpError(500, { message: 'fake-openai: no scripted step left', headers: { 'x-should-retry': 'false' } });
  let fallback = ranOut;
  let served = 0;
  let answered = 0;

  const server = createServer(async (req, res) => {
    if (req.method !== 'POST' || req.url !== PATH) {
      send(res, 404, {
        error: { message: `fake-openai serves POST ${PATH} only, got ${req.method} ${req.url}`, type: 'invalid_request_error' },
      });
      return;
    }
    const body = JSON.parse(await readBody(req)) as ChatRequestBody;
    requests.push({ body, headers: req.headers });
    res.once('finish', () => {
      answered += 1;
    });
    answer(queue.shift() ?? fallback, body, res, ++served);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    answered: () => answered,
    script: (...steps) => void queue.push(...steps),
    otherwise: (step) => {
      fallback = step;
    },
    reset: () => {
      queue.length = 0;
      requests.length = 0;
      answered = 0;
      fallback = ranOut;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function answer(step: FakeStep, body: ChatRequestBody, res: ServerResponse, n: number): void {
  if (step.kind === 'delay') {
    const timer = setTimeout(() => answer(step.step, body, res, n), step.ms);
    // The client gave up (the turn's deadline aborted the request): nothing left to answer.
    res.once('close', () => clearTimeout(timer));
    return;
  }
  if (res.destroyed) return;
  if (step.kind === 'error') {
    send(res, step.status, { error: { message: step.message, type: 'fake_error', code: null } }, step.headers);
    return;
  }
  if (body.stream === true) {
    stream(step, body, res, n);
    return;
  }
  if (step.kind === 'cut') {
    res.destroy();
    return;
  }
  const message: Record<string, unknown> = { role: 'assistant', content: step.content, refusal: null };
  if (step.toolCalls.length > 0) {
    message.tool_calls = step.toolCalls.map((call) => ({
      id: call.id,
      type: 'function',
      function: { name: call.name, arguments: call.arguments },
    }));
  }
  send(res, 200, {
    id: `chatcmpl-fake-${n}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: step.model ?? body.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: step.toolCalls.length > 0 ? 'tool_calls' : 'stop' }],
    ...(step.usage ? { usage: step.usage } : {}),
  });
}

// Private: a step as OpenAI streams it (see the module header).
function stream(step: Exclude<FakeStep, { kind: 'error' | 'delay' }>, body: ChatRequestBody, res: ServerResponse, n: number): void {
  const model = (step.kind === 'reply' && step.model) || body.model;
  const base = { id: `chatcmpl-fake-${n}`, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model };
  const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) => ({
    ...base,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  });
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const event = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
  event(chunk({ role: 'assistant', content: '', refusal: null }));
  if (step.kind === 'cut') {
    for (const piece of pieces(step.content, 3).slice(0, 2)) event(chunk({ content: piece }));
    // The chunks sent (given time to leave), then the connection dropped: part of a stream and no end.
    setTimeout(() => res.destroy(), 20);
    return;
  }
  for (const piece of pieces(step.content ?? '', 3)) event(chunk({ content: piece }));
  for (const [index, call] of step.toolCalls.entries()) {
    event(chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] }));
    for (const fragment of pieces(call.arguments, 3)) event(chunk({ tool_calls: [{ index, function: { arguments: fragment } }] }));
  }
  event(chunk({}, step.toolCalls.length > 0 ? 'tool_calls' : 'stop'));
  const options = body.stream_options as { include_usage?: boolean } | undefined;
  if (step.usage && options?.include_usage) event({ ...base, choices: [], usage: step.usage });
  res.end('data: [DONE]\n\n');
}

// Private: `text` in at most `count` non-empty pieces, cut anywhere (mid-word, mid-JSON), that concatenate to it.
function pieces(text: string, count: number): string[] {
  const size = Math.max(1, Math.ceil(text.length / count));
  const out: string[] = [];
  for (let start = 0; start < text.length; start += size) out.push(text.slice(start, start + size));
  return out;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The real OpenAI agent (the `openai` SDK, streaming) pointed at `fake`, as a server's agent is
 * made with `AGENT=openai`: no retries unless asked, three tool rounds, no title model.
 */
export function fakeModelAgent(fake: FakeOpenAi, options: { maxRetries?: number } = {}): OpenAiAgent {
  return new OpenAiAgent({
    apiKey: 'test-key',
    baseURL: `${fake.url}/v1`,
    model: 'fake-model',
    maxRetries: options.maxRetries ?? 0,
    maxToolRounds: 3,
    contextTokens: 10_000,
    systemPrompt: 'You manage todo lists.',
    titleModel: null,
    log: createLogger('silent'),
  });
}

/** An agent whose inner agent a test switches (the offline one by default): one server, several agents. */
export class SwitchAgent implements Agent {
  readonly name = 'switch';
  inner: Agent = new OfflineAgent();
  run(input: AgentInput): Promise<AgentReply> {
    return this.inner.run(input);
  }
}
