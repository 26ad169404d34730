/**
 * Fault run d: SIGKILL the instance serving a turn half way. The model first asks for `add_task`
 * (the task is created), then its second step is slow; the instance's process group is killed
 * during that step. After the lease (TURN_LEASE=3000), a retry with the same clientMessageId on
 * another instance completes the turn once, in the seq reserved for it, and the task exists once:
 * the retry's context must carry the earlier call and its result (the fake model then answers at
 * once instead of asking for `add_task` again). A plain new message afterwards works too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at, defined } from '../test/support/defined.js';
import { type Outcome, outcomeText, sendMessage, startConversation, tokenFor } from './support/client.js';
import { type Cluster, startCluster } from './support/cluster.js';
import { replyTo } from './support/model.js';
import { audit, orderViolations, printTable, type Sent } from './support/tally.js';

const TURN_LEASE_MS = 3_000;
const RETRY_DEADLINE_MS = 30_000;
const USER = 'd';
const TASK = 'fault-d-task';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ TURN_LEASE: String(TURN_LEASE_MS) });
});

afterAll(async () => {
  await cluster?.close();
});

describe('d. SIGKILL of the instance serving a slow turn', () => {
  it('after the lease, a retry with the same key on another instance completes the turn once; its task exists once', async () => {
    const token = await tokenFor(USER);
    const [a, victim, b] = [
      at(cluster.instances, 0, 'the instances'),
      at(cluster.instances, 1, 'the instances'),
      at(cluster.instances, 2, 'the instances'),
    ];
    const conversationId = await startConversation(a, token, { message: 'd: hello', clientMessageId: 'd-setup' });

    const turn: Sent = { key: 'd-turn', message: `d: add the task #task:${TASK} #delay1:60000`, outcomes: [] };
    const input = { conversationId, message: turn.message, clientMessageId: turn.key };
    const first = sendMessage(victim, token, input);

    // The second model step (the tool result in its context) means add_task has run.
    await cluster.model.waitFor((request) => request.message === turn.message && request.step === 'text', 20_000);
    const tasksBeforeKill = await countTasks();
    const toolCallsBeforeKill = await countToolCalls(conversationId);
    const killedAt = Date.now();
    await victim.kill();
    turn.outcomes.push(await first);

    // Retry with the same key on another instance until it completes (bounded).
    const retries: Outcome[] = [];
    while (Date.now() - killedAt < RETRY_DEADLINE_MS) {
      const outcome = await sendMessage(b, token, input, 20_000);
      retries.push(outcome);
      if (outcome.kind === 'ack' || (outcome.kind === 'error' && outcome.code !== 'CONVERSATION_BUSY')) break;
      const wait = outcome.kind === 'error' ? Number(outcome.extensions.retryAfterMs ?? 200) : 200;
      await sleep(Math.min(Math.max(wait, 50), 1_000));
    }
    turn.outcomes.push(...retries);
    const completedAfterMs = Date.now() - killedAt;

    // A plain new message afterwards, on the first instance.
    const next: Sent = { key: 'd-next', message: 'd: and now something else', outcomes: [] };
    next.outcomes.push(await sendMessage(a, token, { conversationId, message: next.message, clientMessageId: next.key }));

    const result = await audit(cluster, [USER], [turn, next]);
    const messages = result.conversations.get(conversationId) ?? [];
    const last = retries.at(-1);
    const toolSteps = cluster.model.requestsFor(turn.message, 'tool');
    const textSteps = cluster.model.requestsFor(turn.message, 'text');
    const retryFirstStep = cluster.model.requestsFor(turn.message).find((request) => request.at > killedAt);
    const tasks = await countTasks();
    const toolCalls = await countToolCalls(conversationId);

    printTable(
      'scenario d: SIGKILL of the instance during the slow second model step, then a retry with the same key elsewhere',
      result.table,
      [
        `the killed request: ${outcomeText(at(turn.outcomes, 0, 'the outcomes of the killed request'))}; tasks "${TASK}" before the kill: ${tasksBeforeKill}, add_task calls stored before the kill: ${toolCallsBeforeKill}`,
        `retries on instance ${b.index}: ${retries.length} (${retries.map((o) => (o.kind === 'error' ? o.code : o.kind)).join(', ')}); the last: ${last ? outcomeText(last) : '-'}, ${completedAfterMs} ms after the kill`,
        `model steps for the message: ${toolSteps.length} asking for add_task (expected 1), ${textSteps.length} answering; the retry's first model request: ${retryFirstStep ? `${retryFirstStep.step} step, tool result in its context: ${retryFirstStep.sawToolResult}` : 'none'}`,
        `tasks "${TASK}": ${tasks} (expected 1); add_task calls stored in the conversation: ${toolCalls} (expected 1)`,
        `conversation: ${messages.map((row) => `${row.seq}:${row.role}/${row.status}`).join(' ')}`,
        ...result.lostDetails.map((line) => `lost: ${line}`),
        ...result.duplicateDetails.map((line) => `duplicated: ${line}`),
      ],
    );

    expect(at(turn.outcomes, 0, 'the outcomes of the killed request').kind, 'the request to the killed instance has no answer').toBe(
      'unknown',
    );
    expect(tasksBeforeKill, 'add_task ran before the kill').toBe(1);
    expect(retries[0]?.kind === 'error' && retries[0].code, 'the dead instance still holds the conversation until its lease expires').toBe(
      'CONVERSATION_BUSY',
    );
    expect(result.table.lost, 'lost').toBe(0);
    expect(result.table.duplicated, 'duplicated').toBe(0);
    expect(last?.kind === 'ack' && !last.payload.replayed, `the retry completes the turn: ${last ? outcomeText(last) : 'no retry'}`).toBe(
      true,
    );
    if (last?.kind === 'ack') {
      expect(last.payload.userMessage.seq, 'the retry resumes the stored user message').toBe(3);
      expect(last.payload.assistantMessage.seq, 'the reply takes the reserved seq').toBe(4);
      expect(last.payload.response).toBe(replyTo(turn.message));
    }
    expect(tasks, `tasks "${TASK}"`).toBe(1);
    expect(toolSteps.length, 'model steps asking for add_task').toBe(1);
    expect(toolCalls, 'add_task calls stored').toBe(1);
    expect(next.outcomes[0]?.kind, outcomeText(at(next.outcomes, 0, 'the outcomes of the next request'))).toBe('ack');
    expect(orderViolations(messages)).toEqual([]);
  });
});

async function countTasks(): Promise<number> {
  const [row] = await cluster.sql<{ n: number }>('select count(*)::int as n from task where user_id = $1 and title = $2', [USER, TASK]);
  return defined(row, 'the count of tasks').n;
}

async function countToolCalls(conversationId: string): Promise<number> {
  const [row] = await cluster.sql<{ n: number }>(
    "select count(*)::int as n from tool_call where conversation_id = $1 and name = 'add_task'",
    [conversationId],
  );
  return defined(row, 'the count of tool calls').n;
}
