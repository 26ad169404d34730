/**
 * A reader of Server-Sent Events over a real HTTP response (`fetch`): each event as its name, id
 * and parsed JSON data, in order, as they arrive. Comments (heartbeats) are skipped.
 */
export type StreamedEvent = { event: string; id: string | null; data: unknown };

/** Reads `response`'s body as Server-Sent Events, calling `onEvent` for each; resolves when the stream ends. */
export async function readEventStream(response: Response, onEvent: (event: StreamedEvent) => void): Promise<void> {
  const body = response.body;
  if (!body) throw new Error('the response has no body');
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = new Map<string, string>();
      for (const line of block.split('\n')) {
        if (line.startsWith(':') || line === '') continue;
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        fields.set(name, fields.has(name) ? `${fields.get(name)}\n${value}` : value);
      }
      if (!fields.has('data')) continue;
      const data = fields.get('data') ?? '';
      onEvent({ event: fields.get('event') ?? 'message', id: fields.get('id') ?? null, data: data === '' ? null : JSON.parse(data) });
    }
  }
}
