/** GraphQL test helpers: run an operation and get its data, or get the error codes it failed with. */
import { ClientError, type GraphQLClient } from 'graphql-request';
import { expect } from 'vitest';
import { defined } from './defined.js';

/** Runs `query` and returns the first error's `{ code, message, extensions }`; fails the test if it succeeded. */
export async function gqlError(
  client: GraphQLClient,
  query: string,
  variables?: Record<string, unknown>,
): Promise<{ code: string; message: string; extensions: Record<string, unknown> }> {
  try {
    await client.request(query, variables);
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    const first = error.response.errors?.[0];
    expect(first, `expected a GraphQL error, got HTTP ${error.response.status}`).toBeDefined();
    const { extensions, message } = defined(first, 'the first GraphQL error');
    return { code: String(extensions?.code), message, extensions: extensions ?? {} };
  }
  throw new Error('expected the operation to fail, but it succeeded');
}

export const SEND = /* GraphQL */ `
  mutation Send($input: SendMessageInput!) {
    sendMessage(input: $input) {
      conversation { id title messageCount status }
      userMessage { id seq role content status clientMessageId }
      assistantMessage { id seq role content status model }
      response
      toolCalls { callId server name arguments result isError durationMs }
      replayed
    }
  }
`;

export type SendResult = {
  sendMessage: {
    conversation: { id: string; title: string | null; messageCount: number; status: string };
    userMessage: { id: string; seq: number; role: string; content: string; status: string; clientMessageId: string | null };
    assistantMessage: { id: string; seq: number; role: string; content: string; status: string; model: string | null };
    response: string;
    toolCalls: {
      callId: string;
      server: string;
      name: string;
      arguments: Record<string, unknown>;
      result: unknown;
      isError: boolean;
      durationMs: number;
    }[];
    replayed: boolean;
  };
};

/** Sends `message` (in `conversationId` when given) and returns the payload. */
export async function send(client: GraphQLClient, message: string, conversationId?: string, extra: Record<string, unknown> = {}) {
  const data = await client.request<SendResult>(SEND, { input: { message, conversationId, ...extra } });
  return data.sendMessage;
}
