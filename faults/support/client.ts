/**
 * The fault runs' client: `sendMessage` over plain HTTP (fetch), each request classified by what
 * the client can know of it:
 * - `ack`: a `sendMessage` payload came back;
 * - `error`: the server answered with a GraphQL error (its `extensions.code`);
 * - `unknown`: no answer (connection refused or reset, timeout, a body that is not GraphQL); the
 *   turn may or may not have happened.
 */
import { SignJWT } from 'jose';
import { type Instance, JWT_SECRET } from './cluster.js';

export const SEND = /* GraphQL */ `
  mutation Send($input: SendMessageInput!) {
    sendMessage(input: $input) {
      conversation { id }
      userMessage { id seq content clientMessageId }
      assistantMessage { id seq role status }
      response
      replayed
    }
  }
`;

export type Payload = {
  conversation: { id: string };
  userMessage: { id: string; seq: number; content: string; clientMessageId: string | null };
  assistantMessage: { id: string; seq: number; role: string; status: string };
  response: string;
  replayed: boolean;
};

export type SendInput = {
  message: string;
  conversationId?: string;
  clientMessageId?: string;
  ifBusy?: 'REJECT' | 'ENQUEUE';
};

/**
 * What a request came to. `sentAt` is when the client sent it; with an answer, `arrivedBy` is the
 * latest instant it can have reached the server: when its response headers came back, less the
 * time the server says it held it (`Server-Timing: total`).
 */
export type Outcome = { instance: number; sentAt: number; ms: number; arrivedBy?: number } & (
  | { kind: 'ack'; payload: Payload }
  | { kind: 'error'; code: string; message: string; extensions: Record<string, unknown> }
  | { kind: 'unknown'; reason: string }
);

/** Where a request goes: an instance, or anything else with a GraphQL URL (the rolling-restart run's proxy, index -1). */
export type Target = Pick<Instance, 'index' | 'url'>;

/** A signed HS256 token for `userId` (what `npm run token` makes with the same secret). */
export async function tokenFor(userId: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

/** Sends one `sendMessage` to `instance` as the holder of `token`; never throws. */
export async function sendMessage(instance: Target, token: string, input: SendInput, timeoutMs = 60_000): Promise<Outcome> {
  const sentAt = Date.now();
  const base = { instance: instance.index, sentAt };
  let response: Response;
  let text: string;
  let arrivedBy = 0;
  try {
    response = await fetch(instance.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: SEND, variables: { input } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    arrivedBy = Date.now() - serverMs(response.headers.get('server-timing'));
    text = await response.text();
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { ...base, ms: Date.now() - sentAt, kind: 'unknown', reason: cause ?? (error as Error).name ?? String(error) };
  }
  const answered = { ...base, ms: Date.now() - sentAt, arrivedBy };
  let body: { data?: { sendMessage?: Payload | null } | null; errors?: { message: string; extensions?: Record<string, unknown> }[] };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return { ...answered, kind: 'unknown', reason: `HTTP ${response.status}, not JSON: ${text.slice(0, 120)}` };
  }
  if (body.data?.sendMessage) return { ...answered, kind: 'ack', payload: body.data.sendMessage };
  const first = body.errors?.[0];
  if (!first) return { ...answered, kind: 'unknown', reason: `HTTP ${response.status} without data or errors` };
  return {
    ...answered,
    kind: 'error',
    code: String(first.extensions?.code ?? 'NONE'),
    message: first.message,
    extensions: first.extensions ?? {},
  };
}

/** Sends a first message and returns the id of the conversation it started; throws unless acknowledged. */
export async function startConversation(instance: Target, token: string, input: SendInput): Promise<string> {
  const outcome = await sendMessage(instance, token, input);
  if (outcome.kind !== 'ack') throw new Error(`the setup message was not acknowledged: ${outcomeText(outcome)}`);
  return outcome.payload.conversation.id;
}

/** A short text for an outcome, for messages and notes. */
export function outcomeText(outcome: Outcome): string {
  if (outcome.kind === 'ack') return `ack${outcome.payload.replayed ? ' (replayed)' : ''} seq ${outcome.payload.userMessage.seq}`;
  if (outcome.kind === 'error') return `${outcome.code}: ${outcome.message}`;
  return `unknown: ${outcome.reason}`;
}

/** Counts of `items` by `key`, as `{ key: n }` sorted by key (for notes). */
export function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

// Private: the server's `Server-Timing: total;dur=<ms>`, or 0 when it sent none (then `arrivedBy` is only looser).
function serverMs(header: string | null): number {
  const dur = header?.match(/(?:^|,)\s*total;dur=([\d.]+)/)?.[1];
  return dur === undefined ? 0 : Number(dur);
}
