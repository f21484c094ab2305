/**
 * Test-only pgoutput (protocol version 1) encoder: the inverse of src/worker/decode.ts, written from the
 * protocol docs rather than from the decoder so that round trips check the layout. Timestamps are written
 * from `commitTimeMicros`; the `commitTime` text is ignored (the decoder derives it).
 */
import type { PgoutputMessage, TupleValue } from '../../src/worker/decode.js';

class Writer {
  private parts: Buffer[] = [];

  byte(v: number | string): this {
    this.parts.push(Buffer.from([typeof v === 'string' ? v.charCodeAt(0) : v]));
    return this;
  }

  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    this.parts.push(b);
    return this;
  }

  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }

  uint32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }

  uint64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }

  int64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(v);
    this.parts.push(b);
    return this;
  }

  cstring(s: string): this {
    if (s.includes('\0')) throw new Error('pgoutput strings cannot contain NUL');
    this.parts.push(Buffer.from(s, 'utf8'), Buffer.from([0]));
    return this;
  }

  bytes(b: Buffer): this {
    this.int32(b.length);
    this.parts.push(b);
    return this;
  }

  tuple(values: TupleValue[]): this {
    this.int16(values.length);
    for (const v of values) {
      if (v === null) this.byte('n');
      else if (v === undefined) this.byte('u');
      else this.byte('t').bytes(Buffer.from(v, 'utf8'));
    }
    return this;
  }

  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function encodePgoutput(msg: PgoutputMessage): Buffer {
  const w = new Writer();
  switch (msg.tag) {
    case 'begin':
      return w.byte('B').uint64(msg.finalLsn).int64(msg.commitTimeMicros).uint32(msg.xid).done();
    case 'commit':
      return w.byte('C').byte(msg.flags).uint64(msg.commitLsn).uint64(msg.endLsn).int64(msg.commitTimeMicros).done();
    case 'origin':
      return w.byte('O').uint64(msg.originLsn).cstring(msg.name).done();
    case 'relation': {
      w.byte('R').uint32(msg.relationOid).cstring(msg.schema).cstring(msg.name).byte(msg.replicaIdentity);
      w.int16(msg.columns.length);
      for (const col of msg.columns)
        w.byte(col.isKey ? 1 : 0)
          .cstring(col.name)
          .uint32(col.typeOid)
          .int32(col.typmod);
      return w.done();
    }
    case 'type':
      return w.byte('Y').uint32(msg.typeOid).cstring(msg.schema).cstring(msg.name).done();
    case 'insert':
      return w.byte('I').uint32(msg.relationOid).byte('N').tuple(msg.newTuple).done();
    case 'update':
      w.byte('U').uint32(msg.relationOid);
      if (msg.keyTuple) w.byte('K').tuple(msg.keyTuple);
      else if (msg.oldTuple) w.byte('O').tuple(msg.oldTuple);
      return w.byte('N').tuple(msg.newTuple).done();
    case 'delete':
      w.byte('D').uint32(msg.relationOid);
      if (msg.keyTuple) w.byte('K').tuple(msg.keyTuple);
      else if (msg.oldTuple) w.byte('O').tuple(msg.oldTuple);
      else throw new Error('a delete needs keyTuple or oldTuple');
      return w.done();
    case 'truncate': {
      w.byte('T')
        .uint32(msg.relationOids.length)
        .byte((msg.cascade ? 1 : 0) | (msg.restartIdentity ? 2 : 0));
      for (const oid of msg.relationOids) w.uint32(oid);
      return w.done();
    }
    case 'message':
      return w
        .byte('M')
        .byte(msg.transactional ? 1 : 0)
        .uint64(msg.lsn)
        .cstring(msg.prefix)
        .bytes(msg.content)
        .done();
  }
}
