/**
 * Fault run d: SIGKILL the instance serving slow turns half way, and time the recovery. Five
 * conversations each have a turn running on that instance: the model first asks for `add_task`
 * (the task is created), then its second step is slow; the instance's process group is killed
 * during that step. Each client then retries with the same clientMessageId on the other instances
 * (the way a client retries a request that got no answer) until the turn completes.
 *
 * The lease is the default (`TURN_LEASE` unset: 15 s, renewed every 5 s), so the run measures what
 * a deployment gets: per killed turn, the time from the SIGKILL to its completed retry (min, median,
 * max), which must stay below the lease plus a bound. Each turn completes once, in the seq reserved
 * for it, and its task exists once: the retry's context carries the earlier call and its result
 * (the fake model then answers at once instead of asking for `add_task` again). A plain new message
 * afterwards works too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { at, defined } from '../test/support/defined.js';
import { type Outcome, outcomeText, sendMessage, startConversation, tokenFor } from './support/client.js';
import { type Cluster, type Instance, startCluster } from './support/cluster.js';
import { replyTo } from './support/model.js';
import { audit, orderViolations, printTable, type Sent } from './support/tally.js';

/** The default lease, as a server started without TURN_LEASE has it. */
const TURN_LEASE_MS = loadConfig({}).turnLeaseMs;
/** Past the lease: the last renewal before the kill, a retry's pause (1 s at most), the retried turn itself, a loaded machine. */
const RECOVERY_BOUND_MS = 10_000;
const RETRY_DEADLINE_MS = TURN_LEASE_MS + 2 * RECOVERY_BOUND_MS;
const TURNS = 5;
const USER = 'd';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
});

afterAll(async () => {
  await cluster?.close();
});

/** One killed turn: its conversation, its message, the request the kill cut, the retries and when the last completed. */
type Killed = {
  conversationId: string;
  task: string;
  turn: Sent;
  retries: Outcome[];
  tasksBeforeKill: number;
  recoveredMs?: number;
};

describe('d. SIGKILL of the instance serving slow turns', () => {
  it('after the lease, retries with the same keys on the other instances complete each turn once, within the lease plus a bound; each task exists once', async () => {
    const token = await tokenFor(USER);
    const [a, victim, b] = [
      at(cluster.instances, 0, 'the instances'),
      at(cluster.instances, 1, 'the instances'),
      at(cluster.instances, 2, 'the instances'),
    ];
    const killed: Killed[] = await Promise.all(
      Array.from({ length: TURNS }, async (_, i) => {
        const conversationId = await startConversation(a, token, { message: `d${i}: hello`, clientMessageId: `d${i}-setup` });
        const task = `fault-d-task-${i}`;
        const turn: Sent = { key: `d${i}-turn`, message: `d${i}: add the task #task:${task} #delay1:120000`, outcomes: [] };
        return { conversationId, task, turn, retries: [], tasksBeforeKill: 0 };
      }),
    );
    const cut = killed.map(({ conversationId, turn }) =>
      sendMessage(victim, token, { conversationId, message: turn.message, clientMessageId: turn.key }),
    );

    // The second model step (the tool result in its context) means add_task has run.
    await Promise.all(
      killed.map(({ turn }) => cluster.model.waitFor((request) => request.message === turn.message && request.step === 'text', 20_000)),
    );
    for (const turn of killed) turn.tasksBeforeKill = await countTasks(turn.task);
    const killedAt = Date.now();
    await victim.kill();
    for (const [i, turn] of killed.entries()) turn.turn.outcomes.push(await defined(cut[i], `the cut request ${i}`));

    // Each client retries with the same key, alternating between the two live instances, until its turn completes (bounded).
    await Promise.all(killed.map((turn, i) => retryUntilDone(turn, token, i % 2 === 0 ? [a, b] : [b, a], killedAt)));

    // A plain new message afterwards, in the first conversation.
    const first = defined(killed[0], 'the first killed turn');
    const next: Sent = { key: 'd-next', message: 'd: and now something else', outcomes: [] };
    next.outcomes.push(
      await sendMessage(a, token, { conversationId: first.conversationId, message: next.message, clientMessageId: next.key }),
    );

    const result = await audit(cluster, [USER], [...killed.map(({ turn }) => turn), next]);
    const recoveries = killed.flatMap(({ recoveredMs }) => (recoveredMs === undefined ? [] : [recoveredMs])).sort((x, y) => x - y);
    const figures = recoveries.length > 0 ? { min: recoveries[0], median: median(recoveries), max: recoveries.at(-1) } : undefined;
    const perTurn = await Promise.all(
      killed.map(async (turn) => ({
        ...turn,
        tasks: await countTasks(turn.task),
        toolCalls: await countToolCalls(turn.conversationId),
        toolSteps: cluster.model.requestsFor(turn.turn.message, 'tool').length,
        textSteps: cluster.model.requestsFor(turn.turn.message, 'text').length,
        retryFirstStep: cluster.model.requestsFor(turn.turn.message).find((request) => request.at > killedAt),
      })),
    );

    printTable(
      `scenario d: SIGKILL of the instance during the slow second model step of ${TURNS} turns, then retries with the same keys elsewhere (TURN_LEASE ${TURN_LEASE_MS} ms, the default)`,
      result.table,
      [
        `time from the SIGKILL to a completed retry, ${recoveries.length} turns: ${figures ? `min ${figures.min} ms, median ${figures.median} ms, max ${figures.max} ms` : '-'} (bound: the lease + ${RECOVERY_BOUND_MS} ms = ${TURN_LEASE_MS + RECOVERY_BOUND_MS} ms)`,
        ...perTurn.map(
          (turn) =>
            `${turn.turn.key}: cut request ${outcomeText(at(turn.turn.outcomes, 0, 'the cut request'))}; ${turn.retries.length} retries (${turn.retries.map((o) => (o.kind === 'error' ? o.code : o.kind)).join(', ')}); tasks before the kill ${turn.tasksBeforeKill}, after ${turn.tasks}; add_task calls stored ${turn.toolCalls}; model steps: ${turn.toolSteps} add_task, ${turn.textSteps} text; the retry's first model request: ${turn.retryFirstStep ? `${turn.retryFirstStep.step} step, tool result in its context: ${turn.retryFirstStep.sawToolResult}` : 'none'}`,
        ),
        `first conversation: ${(result.conversations.get(first.conversationId) ?? []).map((row) => `${row.seq}:${row.role}/${row.status}`).join(' ')}`,
        ...result.lostDetails.map((line) => `lost: ${line}`),
        ...result.duplicateDetails.map((line) => `duplicated: ${line}`),
      ],
    );

    expect(result.table.lost, 'lost').toBe(0);
    expect(result.table.duplicated, 'duplicated').toBe(0);
    for (const turn of perTurn) {
      const label = turn.turn.key;
      expect(at(turn.turn.outcomes, 0, 'the cut request').kind, `${label}: the request to the killed instance has no answer`).toBe(
        'unknown',
      );
      expect(turn.tasksBeforeKill, `${label}: add_task ran before the kill`).toBe(1);
      expect(
        turn.retries[0]?.kind === 'error' && turn.retries[0].code,
        `${label}: the dead instance still holds the conversation until its lease expires`,
      ).toBe('CONVERSATION_BUSY');
      const last = turn.retries.at(-1);
      expect(
        last?.kind === 'ack' && !last.payload.replayed,
        `${label}: the retry completes the turn: ${last ? outcomeText(last) : 'no retry'}`,
      ).toBe(true);
      if (last?.kind === 'ack') {
        expect(last.payload.userMessage.seq, `${label}: the retry resumes the stored user message`).toBe(3);
        expect(last.payload.assistantMessage.seq, `${label}: the reply takes the reserved seq`).toBe(4);
        expect(last.payload.response).toBe(replyTo(turn.turn.message));
      }
      expect(turn.tasks, `${label}: tasks "${turn.task}"`).toBe(1);
      expect(turn.toolSteps, `${label}: model steps asking for add_task`).toBe(1);
      expect(turn.toolCalls, `${label}: add_task calls stored`).toBe(1);
      expect(orderViolations(result.conversations.get(turn.conversationId) ?? [])).toEqual([]);
    }
    expect(recoveries.length, 'turns recovered').toBe(TURNS);
    expect(defined(figures, 'the recovery figures').max, 'the slowest recovery, in ms after the SIGKILL').toBeLessThan(
      TURN_LEASE_MS + RECOVERY_BOUND_MS,
    );
    expect(next.outcomes[0]?.kind, outcomeText(at(next.outcomes, 0, 'the outcomes of the next request'))).toBe('ack');
  });
});

// Private: retries `turn` with its key on `instances` in turn, pausing as CONVERSATION_BUSY says
// (between 50 ms and 1 s), until it is acknowledged, refused otherwise, or the deadline; records
// when it completed, counted from the kill.
async function retryUntilDone(turn: Killed, token: string, instances: Instance[], killedAt: number): Promise<void> {
  const input = { conversationId: turn.conversationId, message: turn.turn.message, clientMessageId: turn.turn.key };
  for (let attempt = 0; Date.now() - killedAt < RETRY_DEADLINE_MS; attempt++) {
    const outcome = await sendMessage(at(instances, attempt % instances.length, 'the live instances'), token, input, 20_000);
    turn.retries.push(outcome);
    turn.turn.outcomes.push(outcome);
    if (outcome.kind === 'ack') {
      turn.recoveredMs = Date.now() - killedAt;
      return;
    }
    if (outcome.kind === 'error' && outcome.code !== 'CONVERSATION_BUSY') return;
    const wait = outcome.kind === 'error' ? Number(outcome.extensions.retryAfterMs ?? 200) : 200;
    await sleep(Math.min(Math.max(wait, 50), 1_000));
  }
}

function median(sorted: number[]): number {
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? defined(sorted[middle], 'the middle value')
    : Math.round((defined(sorted[middle - 1], 'a middle value') + defined(sorted[middle], 'a middle value')) / 2);
}

async function countTasks(title: string): Promise<number> {
  const [row] = await cluster.sql<{ n: number }>('select count(*)::int as n from task where user_id = $1 and title = $2', [USER, title]);
  return defined(row, 'the count of tasks').n;
}

async function countToolCalls(conversationId: string): Promise<number> {
  const [row] = await cluster.sql<{ n: number }>(
    "select count(*)::int as n from tool_call where conversation_id = $1 and name = 'add_task'",
    [conversationId],
  );
  return defined(row, 'the count of tool calls').n;
}
