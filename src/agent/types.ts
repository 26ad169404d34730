/**
 * The seam between a turn and whatever produces the reply. An `Agent` sees a neutral message
 * list and a `ToolBox`; it knows nothing of the database, GraphQL or HTTP. Tool failures are
 * data (`isError: true`), never exceptions.
 */

/** A tool call as the model asked for it. `arguments` is the raw JSON text the model sent. */
export type AgentToolCall = { id: string; name: string; arguments: string };

/** The neutral conversation history an agent works on. */
export type AgentMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: AgentToolCall[] }
  | { role: 'tool'; callId: string; content: string };

/** A tool offered to the agent: `name` is unique within the tool box. */
export type ToolInfo = {
  server: string;
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
};

/** The outcome of one tool call: `content` is the text the model is given; `structured` the result as data. */
export type ToolOutcome = { content: string; structured: unknown; isError: boolean };

/** What a turn records of a tool call. */
export type ToolCallRecord = {
  callId: string;
  server: string;
  name: string;
  arguments: unknown;
  result: unknown;
  isError: boolean;
  startedAt: Date;
  durationMs: number;
};

/** A tool call as it starts: what the model asked for. */
export type StartingCall = Pick<ToolCallRecord, 'callId' | 'server' | 'name' | 'arguments'>;

/** The tools of one turn, bound to the turn's user by the server; every call is recorded. */
export interface ToolBox {
  list(): ToolInfo[];
  /**
   * Runs tool `name` with `args` (an object, or the model's raw JSON text). Never throws for a
   * tool's failure, bad arguments or an unknown tool: those come back with `isError: true`.
   */
  call(name: string, args: unknown, callId?: string): Promise<ToolOutcome>;
  /** Every call made so far, in the order they were started. */
  readonly calls: readonly ToolCallRecord[];
}

export type TokenUsage = { promptTokens: number; completionTokens: number; totalTokens: number };

export type AgentReply = { content: string; model: string | null; usage: TokenUsage | null };

export type AgentInput = {
  /** History, oldest first; the last message is the new user message. */
  messages: AgentMessage[];
  tools: ToolBox;
  signal?: AbortSignal;
  /**
   * Called with each piece of the reply's text as it is produced, in order (none: nobody listens).
   * The pieces given during one `run` concatenate to exactly the `content` of the `AgentReply` it
   * returns. A piece is never empty. A run that throws may have given pieces of a reply that will
   * not be stored; a listener treats them as provisional until `run` resolves.
   *
   * What the reply is, for an agent that takes several model steps: every text the model wrote to
   * the user during the turn, in order, the steps' texts joined by a blank line (`\n\n`) — the
   * text beside a step's tool calls ("Let me look at your list.") included, since it was already
   * shown while it streamed — and, when the tool rounds run out, the sentence that says so.
   */
  onText?: (delta: string) => void;
};

/** What a title is made from: a conversation's first message and the reply to it. */
export type TitleInput = { message: string; reply: string; signal?: AbortSignal };

export interface Agent {
  /** A short name for logs and the `model` column (`offline`, or the model's name). */
  readonly name: string;
  run(input: AgentInput): Promise<AgentReply>;
  /**
   * A short title for a conversation, asked once its first turn is stored; null when the agent has
   * none to give. Absent: the conversation keeps the title its first message gave it.
   */
  title?(input: TitleInput): Promise<string | null>;
}
