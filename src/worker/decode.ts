/**
 * pgoutput (logical replication protocol, version 1) decoder: the payload of one XLogData message in, one
 * typed message out. Pure: no `pg`, no I/O, no state between calls.
 *
 * Owns: the wire layout of the pgoutput messages and the conversion of their timestamps to text.
 * Must not: convert column values (they stay the text Postgres sent), guess at a damaged message (every read
 * is bounds-checked; a short, long or malformed payload is a DecodeError carrying the byte offset, because a
 * stream that is out of step must stop rather than apply garbage), or keep references into the input buffer
 * (the decoded message owns its strings and bytes).
 *
 * Reference: PostgreSQL docs, "Logical Replication Message Formats". Streaming (protocol 2) and two-phase
 * (protocol 3) messages are not handled: we never request them, so seeing one means we are out of step.
 */

/** LSNs as BigInt, never JS numbers. */
export type Lsn = bigint;

/** Text value | SQL NULL ('n') | unchanged TOAST value ('u' -> undefined; the old value must be kept). */
export type TupleValue = string | null | undefined;

export interface RelationColumn {
  name: string;
  typeOid: number;
  typmod: number;
  /** Part of the replica identity key. */
  isKey: boolean;
}

export type PgoutputMessage =
  | { tag: 'begin'; finalLsn: Lsn; commitTime: string; commitTimeMicros: bigint; xid: number }
  | { tag: 'commit'; flags: number; commitLsn: Lsn; endLsn: Lsn; commitTime: string; commitTimeMicros: bigint }
  | { tag: 'origin'; originLsn: Lsn; name: string }
  | {
      tag: 'relation';
      relationOid: number;
      schema: string;
      name: string;
      replicaIdentity: 'd' | 'n' | 'f' | 'i';
      columns: RelationColumn[];
    }
  | { tag: 'type'; typeOid: number; schema: string; name: string }
  | { tag: 'insert'; relationOid: number; newTuple: TupleValue[] }
  | { tag: 'update'; relationOid: number; keyTuple?: TupleValue[]; oldTuple?: TupleValue[]; newTuple: TupleValue[] }
  | { tag: 'delete'; relationOid: number; keyTuple?: TupleValue[]; oldTuple?: TupleValue[] }
  | { tag: 'truncate'; cascade: boolean; restartIdentity: boolean; relationOids: number[] }
  | { tag: 'message'; transactional: boolean; lsn: Lsn; prefix: string; content: Buffer };

export class DecodeError extends Error {
  /** Byte offset in the payload where decoding failed. */
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(`pgoutput: ${message} (at byte ${offset})`);
    this.name = 'DecodeError';
    this.offset = offset;
  }
}

/** Microseconds between 1970-01-01 and 2000-01-01 (the Postgres epoch). */
const PG_EPOCH_UNIX_MICROS = 946_684_800_000_000n;
const MICROS = 1_000_000n;
/** The range of a JS Date, in seconds. */
const MAX_DATE_SECONDS = 8_640_000_000_000n;

/**
 * A Postgres timestamp (int64 microseconds since 2000-01-01 00:00:00 UTC) as ISO 8601 in UTC with exactly
 * six fractional digits. BigInt math: a Date alone would drop the microseconds. Returns undefined outside
 * the range of a Date (+-273,790 years; includes Postgres's +-infinity).
 */
function timestampText(micros: bigint): string | undefined {
  const unix = micros + PG_EPOCH_UNIX_MICROS;
  let seconds = unix / MICROS;
  let fraction = unix % MICROS;
  if (fraction < 0n) {
    // BigInt division truncates toward zero; timestamps before 1970 need floor.
    fraction += MICROS;
    seconds -= 1n;
  }
  if (seconds > MAX_DATE_SECONDS || seconds < -MAX_DATE_SECONDS) return undefined;
  const whole = new Date(Number(seconds) * 1000).toISOString(); // "...:SS.000Z"
  return whole.slice(0, -4) + fraction.toString().padStart(6, '0') + 'Z';
}

/** {@link timestampText} for callers outside the decoder; throws RangeError outside the range of a Date. */
export function pgTimestampToIso(micros: bigint): string {
  const text = timestampText(micros);
  if (text === undefined)
    throw new RangeError(`timestamp ${micros} µs since 2000-01-01 is outside the range of a Date`);
  return text;
}

const TAG_BEGIN = 0x42; // B
const TAG_COMMIT = 0x43; // C
const TAG_ORIGIN = 0x4f; // O
const TAG_RELATION = 0x52; // R
const TAG_TYPE = 0x59; // Y
const TAG_INSERT = 0x49; // I
const TAG_UPDATE = 0x55; // U
const TAG_DELETE = 0x44; // D
const TAG_TRUNCATE = 0x54; // T
const TAG_MESSAGE = 0x4d; // M

const TUPLE_NEW = 0x4e; // N
const TUPLE_KEY = 0x4b; // K
const TUPLE_OLD = 0x4f; // O

const COL_NULL = 0x6e; // n
const COL_UNCHANGED = 0x75; // u
const COL_TEXT = 0x74; // t
const COL_BINARY = 0x62; // b

function describeByte(b: number): string {
  const hex = '0x' + b.toString(16).padStart(2, '0');
  return b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}' (${hex})` : hex;
}

/** A read position over one payload; every read checks that the bytes are there. */
class Cursor {
  pos = 0;
  readonly end: number;

  constructor(readonly buf: Buffer) {
    this.end = buf.length;
  }

  private need(n: number, what: string): void {
    if (this.end - this.pos < n) {
      throw new DecodeError(`truncated message: ${what} needs ${n} bytes, ${this.end - this.pos} left`, this.pos);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  i32(what: string): number {
    this.need(4, what);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  lsn(what: string): Lsn {
    this.need(8, what);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  i64(what: string): bigint {
    this.need(8, what);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(what: string): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul === -1) throw new DecodeError(`truncated message: ${what} has no terminating NUL`, this.pos);
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /** A length (Int32) followed by that many bytes. */
  private length(what: string): number {
    const at = this.pos;
    const len = this.i32(what);
    if (len < 0) throw new DecodeError(`negative length ${len} for ${what}`, at);
    this.need(len, what);
    return len;
  }

  lengthUtf8(what: string): string {
    const len = this.length(what);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  lengthBytes(what: string): Buffer {
    const len = this.length(what);
    // A copy: the message must not pin (or see later writes to) the socket's buffer.
    const b = Buffer.from(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return b;
  }

  /** Guards an allocation sized by the wire: each item takes at least `minBytes`. */
  count(n: number, minBytes: number, what: string, at: number): void {
    if (n * minBytes > this.end - this.pos) {
      throw new DecodeError(`truncated message: ${n} ${what} cannot fit in the ${this.end - this.pos} bytes left`, at);
    }
  }

  timestamp(what: string): { micros: bigint; text: string } {
    const at = this.pos;
    const micros = this.i64(what);
    const text = timestampText(micros);
    if (text === undefined) throw new DecodeError(`${what} ${micros} is out of range`, at);
    return { micros, text };
  }
}

function tuple(c: Cursor): TupleValue[] {
  const at = c.pos;
  const n = c.u16('tuple column count');
  c.count(n, 1, 'tuple columns', at);
  const values: TupleValue[] = [];
  for (let i = 0; i < n; i++) {
    const kindAt = c.pos;
    const kind = c.u8('column kind');
    if (kind === COL_TEXT) values.push(c.lengthUtf8('column value'));
    else if (kind === COL_NULL) values.push(null);
    else if (kind === COL_UNCHANGED) values.push(undefined);
    else if (kind === COL_BINARY) {
      throw new DecodeError(
        `column ${i + 1} is in binary format; the stream must be requested with binary off`,
        kindAt,
      );
    } else throw new DecodeError(`unknown column kind ${describeByte(kind)} in column ${i + 1}`, kindAt);
  }
  return values;
}

function expectNewTuple(kind: number, at: number): void {
  if (kind !== TUPLE_NEW) throw new DecodeError(`expected new tuple marker 'N', got ${describeByte(kind)}`, at);
}

function decodeBody(c: Cursor, tag: number): PgoutputMessage {
  switch (tag) {
    case TAG_BEGIN: {
      const finalLsn = c.lsn('begin final LSN');
      const ts = c.timestamp('begin commit timestamp');
      const xid = c.u32('begin xid');
      return { tag: 'begin', finalLsn, commitTime: ts.text, commitTimeMicros: ts.micros, xid };
    }
    case TAG_COMMIT: {
      const flags = c.u8('commit flags');
      const commitLsn = c.lsn('commit LSN');
      const endLsn = c.lsn('commit end LSN');
      const ts = c.timestamp('commit timestamp');
      return { tag: 'commit', flags, commitLsn, endLsn, commitTime: ts.text, commitTimeMicros: ts.micros };
    }
    case TAG_ORIGIN: {
      const originLsn = c.lsn('origin LSN');
      const name = c.cstring('origin name');
      return { tag: 'origin', originLsn, name };
    }
    case TAG_RELATION: {
      const relationOid = c.u32('relation OID');
      const schema = c.cstring('relation schema');
      const name = c.cstring('relation name');
      const identityAt = c.pos;
      const identity = c.u8('relation replica identity');
      if (identity !== 0x64 && identity !== 0x6e && identity !== 0x66 && identity !== 0x69) {
        throw new DecodeError(`unknown replica identity ${describeByte(identity)}`, identityAt);
      }
      const countAt = c.pos;
      const n = c.u16('relation column count');
      c.count(n, 10, 'relation columns', countAt); // flags + NUL + type OID + typmod
      const columns: RelationColumn[] = [];
      for (let i = 0; i < n; i++) {
        const flags = c.u8('column flags');
        const colName = c.cstring('column name');
        const typeOid = c.u32('column type OID');
        const typmod = c.i32('column typmod');
        columns.push({ name: colName, typeOid, typmod, isKey: (flags & 1) !== 0 });
      }
      return {
        tag: 'relation',
        relationOid,
        schema,
        name,
        replicaIdentity: String.fromCharCode(identity) as 'd' | 'n' | 'f' | 'i',
        columns,
      };
    }
    case TAG_TYPE: {
      const typeOid = c.u32('type OID');
      const schema = c.cstring('type schema');
      const name = c.cstring('type name');
      return { tag: 'type', typeOid, schema, name };
    }
    case TAG_INSERT: {
      const relationOid = c.u32('insert relation OID');
      const at = c.pos;
      expectNewTuple(c.u8('insert tuple marker'), at);
      return { tag: 'insert', relationOid, newTuple: tuple(c) };
    }
    case TAG_UPDATE: {
      const relationOid = c.u32('update relation OID');
      let at = c.pos;
      let kind = c.u8('update tuple marker');
      let keyTuple: TupleValue[] | undefined;
      let oldTuple: TupleValue[] | undefined;
      if (kind === TUPLE_KEY || kind === TUPLE_OLD) {
        if (kind === TUPLE_KEY) keyTuple = tuple(c);
        else oldTuple = tuple(c);
        at = c.pos;
        kind = c.u8('update new tuple marker');
      }
      expectNewTuple(kind, at);
      const newTuple = tuple(c);
      if (keyTuple) return { tag: 'update', relationOid, keyTuple, newTuple };
      if (oldTuple) return { tag: 'update', relationOid, oldTuple, newTuple };
      return { tag: 'update', relationOid, newTuple };
    }
    case TAG_DELETE: {
      const relationOid = c.u32('delete relation OID');
      const at = c.pos;
      const kind = c.u8('delete tuple marker');
      if (kind === TUPLE_KEY) return { tag: 'delete', relationOid, keyTuple: tuple(c) };
      if (kind === TUPLE_OLD) return { tag: 'delete', relationOid, oldTuple: tuple(c) };
      throw new DecodeError(`expected delete tuple marker 'K' or 'O', got ${describeByte(kind)}`, at);
    }
    case TAG_TRUNCATE: {
      const countAt = c.pos;
      const n = c.u32('truncate relation count');
      const options = c.u8('truncate options');
      c.count(n, 4, 'truncated relation OIDs', countAt);
      const relationOids: number[] = [];
      for (let i = 0; i < n; i++) relationOids.push(c.u32('truncated relation OID'));
      return { tag: 'truncate', cascade: (options & 1) !== 0, restartIdentity: (options & 2) !== 0, relationOids };
    }
    case TAG_MESSAGE: {
      const flags = c.u8('message flags');
      const lsn = c.lsn('message LSN');
      const prefix = c.cstring('message prefix');
      const content = c.lengthBytes('message content');
      return { tag: 'message', transactional: (flags & 1) !== 0, lsn, prefix, content };
    }
    default:
      throw new DecodeError(`unknown message tag ${describeByte(tag)}`, 0);
  }
}

/** Decodes one pgoutput message (the bytes after the 25-byte XLogData header). Throws DecodeError. */
export function decodePgoutput(buf: Buffer): PgoutputMessage {
  const c = new Cursor(buf);
  const tag = c.u8('message tag');
  const msg = decodeBody(c, tag);
  if (c.pos !== c.end) {
    throw new DecodeError(`${c.end - c.pos} unexpected bytes after a complete '${msg.tag}' message`, c.pos);
  }
  return msg;
}
