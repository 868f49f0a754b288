import { createParser } from 'eventsource-parser';

export interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/**
 * Opens an SSE stream and calls onEvent for each event until the stream ends or signal aborts.
 * Rejects with the status and body when the server answers with anything but 200.
 */
export async function readSse(
  url: string,
  headers: Record<string, string>,
  onEvent: (e: SseEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal });
  } catch (err) {
    if (signal.aborted) return; // stopped before the stream began: that is what the caller asked for
    throw err;
  }
  if (res.status !== 200)
    throw Object.assign(new Error(`watch answered ${res.status}: ${await res.text()}`), {
      status: res.status,
    });
  const parser = createParser({
    onEvent: (e) => onEvent({ event: e.event ?? 'message', id: e.id, data: e.data }),
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
      parser.feed(decoder.decode(chunk, { stream: true }));
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}
