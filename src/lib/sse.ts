/**
 * Server-Sent Events framing (HTML Living Standard, "Server-sent events",
 * 9.2.6 "Interpreting an event stream"): the blocks the server writes, and
 * an incremental parser for clients other than a browser's EventSource
 * (the CLI, tests). Pure.
 */

/** One event block. `data` may hold line breaks: each line becomes a `data:` line. */
export function sseBlock(f: { id?: string; event?: string; data: string }): string {
  let out = '';
  if (f.id !== undefined) out += `id: ${oneLine('id', f.id)}\n`;
  if (f.event !== undefined) out += `event: ${oneLine('event', f.event)}\n`;
  for (const line of f.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** A comment block (ignored by clients; keeps proxies from closing an idle stream). */
export function sseComment(text: string): string {
  return `: ${oneLine('comment', text)}\n\n`;
}

/** The reconnection delay a client should use, ms. */
export function sseRetry(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`An SSE retry is a whole number of milliseconds: got ${ms}`);
  return `retry: ${ms}\n\n`;
}

function oneLine(what: string, v: string): string {
  if (/[\r\n\0]/.test(v)) throw new RangeError(`An SSE ${what} cannot hold a line break or NUL: got ${JSON.stringify(v.slice(0, 80))}`);
  return v;
}

export interface SseMessage {
  /** The last event id seen so far (the stream's, not only this block's), or '' before any. */
  id: string;
  /** `message` when the block named none. */
  event: string;
  data: string;
}

/**
 * Feed it text as it arrives; it returns the events completed so far. As
 * the standard says: a block without data dispatches nothing (but an `id:`
 * in it still becomes the last event id), comments and unknown fields are
 * ignored, `retry:` takes digits only.
 */
export class SseParser {
  private buffer = '';
  private data = '';
  private event = '';
  private sawData = false;
  /** The last event id (what a reconnect sends as Last-Event-ID). */
  lastEventId = '';
  /** The last `retry:` value, ms, or null. */
  retry: number | null = null;

  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const i = this.buffer.search(/[\r\n]/);
      if (i < 0) break;
      // A CR last in the buffer may be the first half of a CRLF.
      if (this.buffer[i] === '\r' && i === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, i);
      this.buffer = this.buffer.slice(this.buffer[i] === '\r' && this.buffer[i + 1] === '\n' ? i + 2 : i + 1);
      const m = this.line(line);
      if (m) out.push(m);
    }
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.data += `${value}\n`;
      this.sawData = true;
    } else if (field === 'event') this.event = value;
    else if (field === 'id') {
      if (!value.includes('\0')) this.lastEventId = value;
    } else if (field === 'retry' && /^[0-9]+$/.test(value)) this.retry = Number(value);
    return null;
  }

  private dispatch(): SseMessage | null {
    const had = this.sawData;
    const data = this.data.endsWith('\n') ? this.data.slice(0, -1) : this.data;
    const event = this.event === '' ? 'message' : this.event;
    this.data = '';
    this.event = '';
    this.sawData = false;
    return had ? { id: this.lastEventId, event, data } : null;
  }
}
