/**
 * The pgoutput decoder on bytes: every message kind round-trips through the test encoder, values stay exact
 * text, 64-bit numbers stay exact, and a damaged payload (cut at every offset, a byte too many, a mutated
 * byte) is always a DecodeError — never a result, never another error type.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { DecodeError, decodePgoutput, pgTimestampToIso, type PgoutputMessage } from '../../src/worker/decode.js';
import { encodePgoutput } from '../support/pgoutput-encode.js';

const MAX_U32 = 0xffff_ffff;
const MAX_U64 = 0xffff_ffff_ffff_ffffn;
const ABOVE_2_53 = 2n ** 53n + 1n;

// Micros since 2000-01-01 computed independently (Python datetime), not with the decoder's own method.
const TIMESTAMPS: [bigint, string][] = [
  [0n, '2000-01-01T00:00:00.000000Z'],
  [825915967891011n, '2026-03-04T05:06:07.891011Z'],
  [-1n, '1999-12-31T23:59:59.999999Z'],
  [-946684800000000n, '1970-01-01T00:00:00.000000Z'],
  [-946684800999999n, '1969-12-31T23:59:59.000001Z'],
  [-3155673599999999n, '1900-01-01T00:00:00.000001Z'],
  [-63082281600000000n, '0001-01-01T00:00:00.000000Z'],
  [8276687236854775n, '2262-04-11T23:47:16.854775Z'],
  [252455615999999999n, '9999-12-31T23:59:59.999999Z'],
];

const BIG_VALUE = 'ä€😀x'.repeat(100_000) + 'end'; // > 1 MB of UTF-8 (1.1 M bytes), multi-byte characters throughout

const SAMPLES: Record<string, PgoutputMessage> = {
  begin: {
    tag: 'begin',
    finalLsn: 0x16_b374_d848n,
    commitTime: '2026-03-04T05:06:07.891011Z',
    commitTimeMicros: 825915967891011n,
    xid: 740,
  },
  'begin, extremes': {
    tag: 'begin',
    finalLsn: MAX_U64,
    commitTime: '1999-12-31T23:59:59.999999Z',
    commitTimeMicros: -1n,
    xid: MAX_U32,
  },
  commit: {
    tag: 'commit',
    flags: 0,
    commitLsn: ABOVE_2_53,
    endLsn: ABOVE_2_53 + 40n,
    commitTime: '1969-12-31T23:59:59.000001Z',
    commitTimeMicros: -946684800999999n,
  },
  origin: { tag: 'origin', originLsn: 0x1_0000_0000n + 7n, name: 'upstream Ünïcødé 源' },
  relation: {
    tag: 'relation',
    relationOid: 3_000_000_000,
    schema: 'Sales Dept',
    name: 'Order "Items" ✓',
    replicaIdentity: 'd',
    columns: [
      { name: 'Id', typeOid: 23, typmod: -1, isKey: true },
      { name: 'amount', typeOid: 1700, typmod: (20 << 16) + 6 + 4, isKey: false },
      { name: 'mood', typeOid: MAX_U32, typmod: -1, isKey: false },
      { name: 'ключ', typeOid: 25, typmod: -1, isKey: true },
    ],
  },
  'relation, no columns, identity full': {
    tag: 'relation',
    relationOid: 16384,
    schema: '',
    name: 't',
    replicaIdentity: 'f',
    columns: [],
  },
  'relation, identity nothing': {
    tag: 'relation',
    relationOid: 1,
    schema: 's',
    name: 'n',
    replicaIdentity: 'n',
    columns: [],
  },
  'relation, identity index': {
    tag: 'relation',
    relationOid: 2,
    schema: 's',
    name: 'i',
    replicaIdentity: 'i',
    columns: [{ name: 'k', typeOid: 20, typmod: -1, isKey: true }],
  },
  type: { tag: 'type', typeOid: 2_147_483_648, schema: 'public', name: 'mood' },
  insert: {
    tag: 'insert',
    relationOid: MAX_U32,
    newTuple: ['1', null, undefined, '', '{"a": [1, "é"]}', '\\x00ff', 'こんにちは 🌏'],
  },
  'insert, no columns': { tag: 'insert', relationOid: 5, newTuple: [] },
  'insert, 1 MB value': { tag: 'insert', relationOid: 16385, newTuple: ['1', BIG_VALUE] },
  update: { tag: 'update', relationOid: 16385, newTuple: ['1', undefined, 'changed'] },
  'update, key changed': {
    tag: 'update',
    relationOid: 16385,
    keyTuple: ['1', null, null],
    newTuple: ['2', undefined, 'x'],
  },
  'update, identity full': {
    tag: 'update',
    relationOid: 16385,
    oldTuple: ['1', 'a', null],
    newTuple: ['1', 'b', null],
  },
  'delete, key': { tag: 'delete', relationOid: 16385, keyTuple: ['1', null] },
  'delete, identity full': { tag: 'delete', relationOid: 4_000_000_000, oldTuple: ['1', 'a', ''] },
  truncate: { tag: 'truncate', cascade: false, restartIdentity: false, relationOids: [16385] },
  'truncate, cascade restart identity': {
    tag: 'truncate',
    cascade: true,
    restartIdentity: true,
    relationOids: [16385, MAX_U32, 3_000_000_000],
  },
  'truncate, restart identity only': { tag: 'truncate', cascade: false, restartIdentity: true, relationOids: [1, 2] },
  message: {
    tag: 'message',
    transactional: true,
    lsn: MAX_U64 - 1n,
    prefix: 'mirrors',
    content: Buffer.from('hello ✓'),
  },
  'message, binary non-transactional': {
    tag: 'message',
    transactional: false,
    lsn: 0n,
    prefix: '',
    content: Buffer.from([0, 255, 0, 1]),
  },
  'message, empty content': { tag: 'message', transactional: true, lsn: 1n, prefix: 'p', content: Buffer.alloc(0) },
};

const small = Object.entries(SAMPLES).filter(([name]) => name !== 'insert, 1 MB value');

function decodeError(fn: () => unknown): DecodeError {
  try {
    const result = fn();
    throw new Error(
      `expected a DecodeError, got a result: ${JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
    );
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
}

describe('decodePgoutput round trips', () => {
  it.each(Object.entries(SAMPLES))('%s', (_name, msg) => {
    expect(decodePgoutput(encodePgoutput(msg))).toEqual(msg);
  });

  it('covers every message kind', () => {
    const kinds = new Set(Object.values(SAMPLES).map((m) => m.tag));
    expect([...kinds].sort()).toEqual([
      'begin',
      'commit',
      'delete',
      'insert',
      'message',
      'origin',
      'relation',
      'truncate',
      'type',
      'update',
    ]);
  });

  it('decodes a payload that sits inside a larger buffer (the XLogData body of a socket chunk)', () => {
    for (const [name, msg] of small) {
      const bytes = encodePgoutput(msg);
      for (let before = 0; before < 9; before++) {
        const chunk = Buffer.concat([Buffer.alloc(before, 0x55), bytes, Buffer.alloc(7, 0x55)]);
        expect(decodePgoutput(chunk.subarray(before, before + bytes.length)), `${name} at ${before}`).toEqual(msg);
      }
    }
  });

  it('tells NULL, an unchanged TOAST value and the empty string apart', () => {
    const bytes = encodePgoutput({ tag: 'update', relationOid: 1, newTuple: [null, undefined, '', 'x'] });
    // 'n', 'u', then 't' with length 0, then 't' with length 1
    expect(bytes.subarray(6).toString('latin1')).toBe('\x00\x04nut\x00\x00\x00\x00t\x00\x00\x00\x01x');
    const msg = decodePgoutput(bytes);
    if (msg.tag !== 'update') throw new Error(msg.tag);
    expect(msg.newTuple).toHaveLength(4);
    expect(msg.newTuple[0]).toBeNull();
    expect(1 in msg.newTuple).toBe(true);
    expect(msg.newTuple[1]).toBeUndefined();
    expect(msg.newTuple[2]).toBe('');
    expect(msg.newTuple[3]).toBe('x');
    expect('keyTuple' in msg || 'oldTuple' in msg).toBe(false);
  });

  it('keeps a 1 MB multi-byte text value exact', () => {
    const msg = decodePgoutput(encodePgoutput(SAMPLES['insert, 1 MB value']));
    if (msg.tag !== 'insert') throw new Error(msg.tag);
    expect(Buffer.byteLength(msg.newTuple[1] as string)).toBeGreaterThan(1_000_000);
    expect(msg.newTuple[1] === BIG_VALUE).toBe(true);
  });

  it('keeps LSNs above 2^53 exact', () => {
    for (const lsn of [ABOVE_2_53, MAX_U64, 2n ** 63n, 2n ** 63n + 1n]) {
      const m = decodePgoutput(encodePgoutput({ tag: 'origin', originLsn: lsn, name: 'o' }));
      expect(m).toEqual({ tag: 'origin', originLsn: lsn, name: 'o' });
    }
    // Read as unsigned: the top bit set is a huge LSN, not a negative one.
    const raw = Buffer.from('42ffffffffffffffff000000000000000000000001', 'hex');
    expect(decodePgoutput(raw)).toMatchObject({ tag: 'begin', finalLsn: MAX_U64, commitTimeMicros: 0n, xid: 1 });
  });

  it('reads OIDs and xids as unsigned 32-bit', () => {
    const raw = Buffer.from('59ffffffff73007400', 'hex'); // Type, OID 0xffffffff, "s", "t"
    expect(decodePgoutput(raw)).toEqual({ tag: 'type', typeOid: MAX_U32, schema: 's', name: 't' });
  });

  it('keeps typmods signed', () => {
    const m = decodePgoutput(encodePgoutput(SAMPLES.relation));
    if (m.tag !== 'relation') throw new Error(m.tag);
    expect(m.columns.map((c) => c.typmod)).toEqual([-1, 1310730, -1, -1]);
  });

  it.each(TIMESTAMPS)('timestamp %s µs is %s', (micros, iso) => {
    expect(pgTimestampToIso(micros)).toBe(iso);
    const m = decodePgoutput(
      encodePgoutput({ tag: 'begin', finalLsn: 1n, commitTime: iso, commitTimeMicros: micros, xid: 1 }),
    );
    expect(m).toEqual({ tag: 'begin', finalLsn: 1n, commitTime: iso, commitTimeMicros: micros, xid: 1 });
  });

  it('refuses timestamps a Date cannot hold (Postgres infinity)', () => {
    const raw = encodePgoutput({
      tag: 'commit',
      flags: 0,
      commitLsn: 1n,
      endLsn: 2n,
      commitTime: '',
      commitTimeMicros: 2n ** 63n - 1n,
    });
    expect(decodeError(() => decodePgoutput(raw)).offset).toBe(18);
    expect(() => pgTimestampToIso(-(2n ** 63n))).toThrow(RangeError);
  });
});

describe('decodePgoutput on damaged payloads', () => {
  it('throws DecodeError for every message cut at every offset', () => {
    // The 1 MB sample means a million throws: stack traces would make that the slowest test by far.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    onTestFinished(() => {
      Error.stackTraceLimit = stackTraceLimit;
    });
    for (const [name, msg] of Object.entries(SAMPLES)) {
      const bytes = encodePgoutput(msg);
      const failures: string[] = [];
      for (let cut = 0; cut < bytes.length; cut++) {
        try {
          const result = decodePgoutput(bytes.subarray(0, cut));
          failures.push(`${name} cut at ${cut}: returned ${result.tag}`);
        } catch (e) {
          if (!(e instanceof DecodeError)) failures.push(`${name} cut at ${cut}: ${String(e)}`);
          else if (e.offset < 0 || e.offset > cut) failures.push(`${name} cut at ${cut}: offset ${e.offset}`);
        }
        if (failures.length > 5) break;
      }
      expect(failures).toEqual([]);
    }
  });

  it('reports the offset of the field that does not fit', () => {
    const bytes = encodePgoutput(SAMPLES.begin);
    const e = decodeError(() => decodePgoutput(bytes.subarray(0, 12)));
    expect(e.offset).toBe(9); // tag (1) + final LSN (8): the timestamp is cut
    expect(e.message).toMatch(/begin commit timestamp needs 8 bytes, 3 left/);
    expect(decodeError(() => decodePgoutput(Buffer.alloc(0))).offset).toBe(0);
  });

  it.each(small)('throws DecodeError on a trailing byte after %s', (_name, msg) => {
    const bytes = Buffer.concat([encodePgoutput(msg), Buffer.from([0])]);
    const e = decodeError(() => decodePgoutput(bytes));
    expect(e.offset).toBe(bytes.length - 1);
    expect(e.message).toMatch(/1 unexpected bytes after a complete/);
  });

  it('names an unknown tag', () => {
    expect(decodeError(() => decodePgoutput(Buffer.from('X')))).toMatchObject({
      offset: 0,
      message: expect.stringContaining(`'X' (0x58)`),
    });
    // Protocol 2 stream start: never requested, so the stream is out of step.
    expect(decodeError(() => decodePgoutput(Buffer.from('S\0\0\0\x01\x01', 'latin1'))).message).toContain(`'S'`);
    expect(decodeError(() => decodePgoutput(Buffer.from([0x00]))).message).toContain('0x00');
  });

  it('refuses binary column values', () => {
    const raw = Buffer.concat([Buffer.from('I\0\0\0\x01N\0\x02n', 'latin1'), Buffer.from('b\0\0\0\x01\x07', 'latin1')]);
    const e = decodeError(() => decodePgoutput(raw));
    expect(e.offset).toBe(9);
    expect(e.message).toMatch(/column 2 is in binary format/);
  });

  it('refuses malformed fields', () => {
    const cases: [string, string, RegExp][] = [
      ['unknown column kind', 'I\0\0\0\x01N\0\x01x', /unknown column kind 'x'/],
      ['negative value length', 'I\0\0\0\x01N\0\x01t\xff\xff\xff\xff', /negative length -1/],
      ['insert without N', 'I\0\0\0\x01K\0\0', /expected new tuple marker 'N', got 'K'/],
      ['update with two old tuples', 'U\0\0\0\x01K\0\0O\0\0', /expected new tuple marker 'N', got 'O'/],
      ['delete with a new tuple', 'D\0\0\0\x01N\0\0', /'K' or 'O', got 'N'/],
      ['unknown replica identity', 'R\0\0\0\x01s\0t\0x\0\0', /unknown replica identity 'x'/],
      ['string without NUL', 'Y\0\0\0\x01public', /no terminating NUL/],
      ['column count beyond the payload', 'I\0\0\0\x01N\xff\xff', /65535 tuple columns cannot fit/],
      [
        'truncate count beyond the payload',
        'T\xff\xff\xff\xff\0\0\0\0\x01',
        /4294967295 truncated relation OIDs cannot fit/,
      ],
    ];
    for (const [what, raw, message] of cases) {
      expect(decodeError(() => decodePgoutput(Buffer.from(raw, 'latin1'))).message, what).toMatch(message);
    }
  });

  it('never throws anything but DecodeError on randomly mutated payloads', () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const unexpected: string[] = [];
    for (const [name, msg] of small) {
      const bytes = encodePgoutput(msg);
      for (let round = 0; round < 300; round++) {
        const b = Buffer.from(bytes);
        for (let k = 1 + rand(3); k > 0; k--) b[rand(b.length)] = rand(256);
        try {
          decodePgoutput(b);
        } catch (e) {
          if (!(e instanceof DecodeError)) unexpected.push(`${name}: ${b.toString('hex')}: ${String(e)}`);
        }
      }
    }
    expect(unexpected).toEqual([]);
  });
});
