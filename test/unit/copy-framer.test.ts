/**
 * The CopyData framer on bytes: for a source's reply to COPY ... TO STDOUT, however the socket cuts it
 * (at every offset, at every pair of offsets, one byte at a time, in random chunkings), the destination gets
 * exactly the CopyData messages, headers included, in order; the row and byte counts are the same; pg gets
 * exactly what follows CopyDone, or everything from the first message the framer does not handle.
 *
 * Expected values come from how each stream was built, never from parsing it.
 */
import { describe, expect, it } from 'vitest';
import { CopyDataFramer } from '../../src/apply/copy/framer.js';

// ---------------------------------------------------------------------------------------------------------
// Building a realistic reply, message by message

function message(code: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = code.charCodeAt(0);
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string) => Buffer.from(`${s}\0`);
const int16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

const copyOutResponse = (format: 0 | 1, columns: number) =>
  message(
    'H',
    Buffer.concat([Buffer.from([format]), int16(columns), ...Array.from({ length: columns }, () => int16(format))]),
  );
const notice = (text: string) =>
  message('N', Buffer.concat([cstr('SWARNING'), cstr('C01000'), cstr(`M${text}`), Buffer.from([0])]));
const parameterStatus = (name: string, value: string) => message('S', Buffer.concat([cstr(name), cstr(value)]));
const notification = (channel: string, payload: string) =>
  message('A', Buffer.concat([int32(4242), cstr(channel), cstr(payload)]));
const copyDone = () => message('c', Buffer.alloc(0));
const commandComplete = (rows: number) => message('C', cstr(`COPY ${rows}`));
const readyForQuery = () => message('Z', Buffer.from('I'));
const errorResponse = () =>
  message(
    'E',
    Buffer.concat([
      cstr('SERROR'),
      cstr('VERROR'),
      cstr('C57014'),
      cstr('Mcanceling statement due to user request'),
      Buffer.from([0]),
    ]),
  );

/** Binary COPY's file header (signature, flags, header extension length) and trailer (field count -1). */
const BINARY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), int32(0), int32(0)]);
const BINARY_TRAILER = int16(0xffff);

function binaryRow(fields: (Buffer | null)[]): Buffer {
  return Buffer.concat([
    int16(fields.length),
    ...fields.flatMap((f) => (f === null ? [int32(-1)] : [int32(f.length), f])),
  ]);
}

/** A reply, and what each party must get from it. */
interface Reply {
  stream: Buffer;
  forwarded: Buffer;
  rows: number;
  bytes: number;
  pg: Buffer;
  /** Where each message starts and ends in the stream, and whether it is CopyData, up to the last one the framer reads. */
  framed: { start: number; end: number; data: boolean }[];
}

type Part =
  | { kind: 'data'; msg: Buffer; rows: number; bytes: number }
  | { kind: 'skip'; msg: Buffer }
  | { kind: 'pg'; msg: Buffer; consumed?: boolean };

function reply(parts: Part[]): Reply {
  const framed: Reply['framed'] = [];
  const forwarded: Buffer[] = [];
  const pg: Buffer[] = [];
  let rows = 0;
  let bytes = 0;
  let at = 0;
  let over = false;
  for (const p of parts) {
    if (!over) framed.push({ start: at, end: at + p.msg.length, data: p.kind === 'data' });
    at += p.msg.length;
    if (p.kind === 'data') {
      forwarded.push(p.msg);
      rows += p.rows;
      bytes += p.bytes;
    } else if (p.kind === 'pg') {
      over = true;
      if (!p.consumed) pg.push(p.msg);
    }
  }
  return {
    stream: Buffer.concat(parts.map((p) => p.msg)),
    forwarded: Buffer.concat(forwarded),
    rows,
    bytes,
    pg: Buffer.concat(pg),
    framed,
  };
}

const data = (payload: Buffer, rows: number, bytes: number): Part => ({
  kind: 'data',
  msg: message('d', payload),
  rows,
  bytes,
});
const textRow = (line: string): Part => data(Buffer.from(line), 1, Buffer.byteLength(line));
const skip = (msg: Buffer): Part => ({ kind: 'skip', msg });
const toPg = (msg: Buffer): Part => ({ kind: 'pg', msg });
/** CopyDone ends the COPY OUT: the framer consumes it, pg never sees it. */
const done = (): Part => ({ kind: 'pg', msg: copyDone(), consumed: true });

function textReply(rows: string[]): Reply {
  return reply([
    skip(copyOutResponse(0, 3)),
    ...rows.slice(0, 2).map(textRow),
    skip(notice('a notice amid the copy')),
    skip(parameterStatus('application_name', 'mirrors snapshot')),
    ...rows.slice(2, 4).map(textRow),
    skip(notification('chan', 'hello')),
    ...rows.slice(4).map(textRow),
    done(),
    toPg(commandComplete(rows.length)),
    toPg(readyForQuery()),
  ]);
}

/**
 * Postgres sends binary COPY's header in the first row's message (or the trailer's, for no rows) and the
 * trailer in a message of its own. The header's message counts its row's bytes but not the row itself:
 * rows from messages are for progress only, and the part's count is taken from the command tag.
 */
function binaryReply(rows: (Buffer | null)[][]): Reply {
  const encoded = rows.map(binaryRow);
  const parts: Part[] = [skip(copyOutResponse(1, 2))];
  if (encoded.length === 0) parts.push(data(Buffer.concat([BINARY_HEADER, BINARY_TRAILER]), 0, 0));
  else {
    parts.push(data(Buffer.concat([BINARY_HEADER, encoded[0]]), 0, encoded[0].length));
    for (const r of encoded.slice(1)) parts.push(data(r, 1, r.length));
    parts.push(data(BINARY_TRAILER, 0, 0));
  }
  parts.push(done(), toPg(commandComplete(rows.length)), toPg(readyForQuery()));
  return reply(parts);
}

const TEXT_ROWS = [
  '1\tone\t\\N\n',
  '2\ttwo\tx\n',
  '\n',
  `4\t${'ä'.repeat(150)}\t\\\\t\n`,
  '5\t\t\n',
  '6\tsix\t{1,2}\n',
];
const BINARY_ROWS: (Buffer | null)[][] = [
  [int32(1), Buffer.from('one')],
  [int32(2), null],
  [int32(3), Buffer.from('ä'.repeat(200))],
  [int32(4), Buffer.alloc(0)],
];

const REPLIES: Record<string, { binary: boolean; reply: Reply }> = {
  'text COPY with notices, a parameter status and a notification amid it': {
    binary: false,
    reply: textReply(TEXT_ROWS),
  },
  'binary COPY': { binary: true, reply: binaryReply(BINARY_ROWS) },
  'binary COPY of an empty table (header and trailer in one message)': { binary: true, reply: binaryReply([]) },
  'text COPY that fails mid-stream with an ErrorResponse': {
    binary: false,
    reply: reply([
      skip(copyOutResponse(0, 3)),
      ...TEXT_ROWS.slice(0, 3).map(textRow),
      toPg(errorResponse()),
      toPg(readyForQuery()),
    ]),
  },
  'binary COPY that fails right after its first row': {
    binary: true,
    reply: reply([
      skip(copyOutResponse(1, 2)),
      data(Buffer.concat([BINARY_HEADER, binaryRow(BINARY_ROWS[0])]), 0, binaryRow(BINARY_ROWS[0]).length),
      toPg(errorResponse()),
      toPg(readyForQuery()),
    ]),
  },
};

// ---------------------------------------------------------------------------------------------------------
// Feeding it, as the socket would

interface Outcome {
  forwarded: Buffer;
  rows: number;
  bytes: number;
  pg: Buffer;
  ended: boolean;
}

/** Chunks after the framer's rest go to pg directly: the socket is pg's again and the framer never sees them. */
function feed(binary: boolean, chunks: Buffer[]): Outcome {
  const framer = new CopyDataFramer(binary);
  const forwarded: Buffer[] = [];
  const pg: Buffer[] = [];
  let rows = 0;
  let bytes = 0;
  let ended = false;
  for (const chunk of chunks) {
    if (ended) {
      pg.push(chunk);
      continue;
    }
    const f = framer.push(chunk);
    forwarded.push(...f.forward);
    rows += f.rows;
    bytes += f.bytes;
    if (f.rest) {
      ended = true;
      pg.push(f.rest);
    }
  }
  return { forwarded: Buffer.concat(forwarded), rows, bytes, pg: Buffer.concat(pg), ended };
}

/**
 * How an outcome differs from what the reply says each party must get: [] when it does not. (toEqual on
 * large Buffers compares them index by index, far too slowly for thousands of chunkings.)
 */
function differences(out: Outcome, r: Reply): string[] {
  const d: string[] = [];
  const bytesDiffer = (what: string, got: Buffer, want: Buffer) => {
    if (got.equals(want)) return;
    let i = 0;
    while (i < got.length && i < want.length && got[i] === want[i]) i++;
    d.push(`${what}: ${got.length} bytes, want ${want.length}; first difference at ${i}`);
  };
  bytesDiffer('forwarded', out.forwarded, r.forwarded);
  bytesDiffer('left for pg', out.pg, r.pg);
  if (out.rows !== r.rows) d.push(`rows ${out.rows}, want ${r.rows}`);
  if (out.bytes !== r.bytes) d.push(`bytes ${out.bytes}, want ${r.bytes}`);
  if (!out.ended) d.push('never saw the end of the COPY OUT');
  return d;
}

function split(stream: Buffer, offsets: number[]): Buffer[] {
  const bounds = [0, ...offsets, stream.length];
  return bounds.slice(1).map((b, i) => stream.subarray(bounds[i], b));
}

/** CopyData bytes the framer can have forwarded once it has seen the first k bytes: all but a cut header. */
function forwardableBy(r: Reply, k: number): number {
  let n = 0;
  for (const m of r.framed) {
    if (!m.data || m.start >= k || k - m.start < 5) continue;
    n += Math.min(m.end, k) - m.start;
  }
  return n;
}

/** mulberry32: a seeded generator, so that a failing chunking can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------------------

describe('CopyData framer', () => {
  for (const [name, { binary, reply: r }] of Object.entries(REPLIES)) {
    describe(name, () => {
      it('in one chunk: forwards exactly the CopyData messages, counts their rows and bytes, leaves pg the rest', () => {
        expect(differences(feed(binary, [r.stream]), r)).toEqual([]);
      });

      it('cut at every offset: the same outcome, and the first chunk forwards all its CopyData bytes but a cut header', () => {
        for (let k = 1; k < r.stream.length; k++) {
          const [a, b] = split(r.stream, [k]);
          const framer = new CopyDataFramer(binary);
          const first = framer.push(a);
          const sent = Buffer.concat(first.forward);
          const ctx = `cut at ${k} of ${r.stream.length}`;
          expect(sent.length, ctx).toBe(forwardableBy(r, k));
          expect(sent.equals(r.forwarded.subarray(0, sent.length)), ctx).toBe(true);
          expect(differences(feed(binary, [a, b]), r), ctx).toEqual([]);
        }
      });

      it('cut at every pair of offsets: the same outcome', () => {
        for (let i = 1; i < r.stream.length; i++) {
          for (let j = i + 1; j < r.stream.length; j++) {
            const d = differences(feed(binary, split(r.stream, [i, j])), r);
            // expect() on each of the ~100k pairs would dominate the run: only on a mismatch.
            if (d.length > 0) expect(d, `cut at ${i} and ${j} of ${r.stream.length}`).toEqual([]);
          }
        }
      });

      it('one byte at a time: the same outcome', () => {
        expect(
          differences(
            feed(
              binary,
              split(
                r.stream,
                Array.from({ length: r.stream.length - 1 }, (_, i) => i + 1),
              ),
            ),
            r,
          ),
        ).toEqual([]);
      });
    });
  }

  it('in random chunkings of a reply with rows far larger than a chunk: the same outcome', () => {
    const big = textReply([
      ...TEXT_ROWS.slice(0, 3),
      `7\t${'x'.repeat(200_000)}\n`,
      ...TEXT_ROWS.slice(3),
      `8\t${'y'.repeat(70_000)}\n`,
    ]);
    const bigBinary = binaryReply([
      [int32(1), Buffer.alloc(150_000, 7)],
      ...BINARY_ROWS,
      [int32(9), Buffer.alloc(66_000, 9)],
    ]);
    for (const [binary, r] of [
      [false, big],
      [true, bigBinary],
    ] as const) {
      for (let seed = 1; seed <= 200; seed++) {
        const next = random(seed);
        const offsets: number[] = [];
        // Small steps cut headers; large ones look like the socket's 64 KiB reads.
        for (let at = 0; ; ) {
          at += next() < 0.5 ? 1 + Math.floor(next() * 8) : 1 + Math.floor(next() * 70_000);
          if (at >= r.stream.length) break;
          offsets.push(at);
        }
        expect(differences(feed(binary, split(r.stream, offsets)), r), `binary ${binary}, seed ${seed}`).toEqual([]);
      }
    }
  });

  it('forwards views of the chunks it was given, not copies, when no header is cut', () => {
    const r = REPLIES['binary COPY'].reply;
    // Cut inside a row's contents: the first chunk ends mid-message, the second continues it and ends the COPY.
    const row = r.framed.filter((m) => m.data)[2];
    const cut = row.start + 10;
    // Buffer.alloc never takes from Node's shared pool: a copy cannot share a chunk's memory by chance.
    const chunks = split(r.stream, [cut]).map((c) => {
      const own = Buffer.alloc(c.length);
      c.copy(own);
      return own;
    });
    const framer = new CopyDataFramer(true);
    for (const chunk of chunks) {
      const { forward } = framer.push(chunk);
      expect(forward.length).toBeGreaterThan(0);
      for (const run of forward) expect(run.buffer).toBe(chunk.buffer);
    }
  });

  it('refuses data after the end of the COPY OUT: the socket belongs to pg by then', () => {
    const framer = new CopyDataFramer(false);
    expect(framer.push(Buffer.concat([message('d', Buffer.from('1\n')), copyDone()])).rest).toEqual(Buffer.alloc(0));
    expect(() => framer.push(readyForQuery())).toThrow(/after the end of the COPY OUT/);
  });
});
