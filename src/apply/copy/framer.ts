/**
 * The CopyData framer: reads the message framing of a source's reply to `COPY ... TO STDOUT`, one socket
 * chunk at a time, and says which bytes go to the destination, how many rows and bytes of COPY data they
 * carry, and where the COPY OUT ends and pg's part of the stream begins.
 *
 * Owns: the framing state between chunks (a message cut by a chunk's end, a 5-byte header cut in two) and
 * the rules for counting rows and bytes in text and binary COPY.
 * Must not: touch sockets, streams or pg (it is given Buffers and returns Buffers; the caller moves them),
 * open or copy a CopyData message's contents (forwarded runs are views of the chunks it was given, headers
 * included), hold more than a cut header back, or read past the first message it does not handle.
 */
import { MirrorsError } from '../../errors.js';

export const MSG_COPY_DATA = 0x64; // 'd'
export const MSG_COPY_DONE = 0x63; // 'c'
/** Messages allowed amid a COPY OUT that a copy can do without: CopyOutResponse, Notice, ParameterStatus, Notification. */
const MSG_SKIPPED = new Set([0x48, 0x4e, 0x53, 0x41]);
/** Type byte and length: what must be in hand before a message can be classified. */
const HEADER = 5;
/** Binary COPY's framing: signature, flags and extension length; the field count -1. Not counted as data. */
const BINARY_HEADER = 19;
const BINARY_TRAILER = 2;

export interface Framed {
  /** Runs of CopyData messages (whole or cut by a chunk's end), in order: the destination takes them as they are. */
  forward: Buffer[];
  /** Rows and bytes of COPY data (no message headers, no binary framing) that this chunk's messages start. */
  rows: number;
  bytes: number;
  /**
   * Present once the COPY OUT is over: the bytes that are pg's to parse, from the message after CopyDone
   * (CommandComplete, ReadyForQuery), or from the first message the framer does not handle (an
   * ErrorResponse). May be empty. Nothing may be pushed after it.
   */
  rest?: Buffer;
}

export class CopyDataFramer {
  /** Bytes of the current message still to come in later chunks, and whether they are forwarded. */
  private left = 0;
  private leftIsData = false;
  /** The start of a message whose header was cut by the chunk's end. */
  private pending: Buffer | null = null;
  /** Binary COPY's header is sent with the first row (or the trailer), its trailer alone: neither is a row. */
  private headerSeen = false;
  private ended = false;

  constructor(private readonly binary: boolean) {}

  push(data: Buffer): Framed {
    if (this.ended) throw new MirrorsError('INTERNAL', 'copy: data pushed to the framer after the end of the COPY OUT');
    let chunk = data;
    if (this.pending) {
      // At most 4 bytes are joined: the only copy the framer makes.
      chunk = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    const framed: Framed = { forward: [], rows: 0, bytes: 0 };
    const len = chunk.length;
    let i = 0;
    /** Start of the run of CopyData bytes to forward, -1: none. */
    let from = -1;
    if (this.left > 0) {
      i = Math.min(this.left, len);
      this.left -= i;
      if (this.leftIsData) from = 0;
    }
    while (i < len) {
      if (len - i < HEADER) {
        this.pending = chunk.subarray(i);
        break;
      }
      const code = chunk[i];
      const end = i + 1 + chunk.readUInt32BE(i + 1);
      if (code === MSG_COPY_DATA) {
        if (from < 0) from = i;
        // Counted on the header: a message's size is known before its contents arrive.
        this.count(framed, end - i - HEADER);
      } else {
        if (from >= 0) framed.forward.push(chunk.subarray(from, i));
        from = -1;
        if (!MSG_SKIPPED.has(code)) {
          this.ended = true;
          // CopyDone is the framer's to consume; anything else (ErrorResponse above all) pg must see.
          framed.rest = code === MSG_COPY_DONE ? chunk.subarray(end) : chunk.subarray(i);
          return framed;
        }
      }
      if (end > len) {
        this.left = end - len;
        this.leftIsData = code === MSG_COPY_DATA;
        i = len;
      } else i = end;
    }
    // i is where the pending header starts, or the chunk's end.
    if (from >= 0) framed.forward.push(chunk.subarray(from, i));
    return framed;
  }

  private count(framed: Framed, payload: number): void {
    if (!this.binary) {
      framed.rows++;
      framed.bytes += payload;
    } else if (!this.headerSeen) {
      // The header, with the first row or else the trailer.
      this.headerSeen = true;
      framed.bytes += payload === BINARY_HEADER + BINARY_TRAILER ? 0 : payload - BINARY_HEADER;
    } else if (payload !== BINARY_TRAILER) {
      // A row is at least its field count and one field's length: only the trailer has 2 bytes.
      framed.rows++;
      framed.bytes += payload;
    }
  }
}
