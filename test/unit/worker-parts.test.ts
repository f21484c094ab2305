/** The worker's pure parts: batching, lag, the gap check, fault classification, the apply pipeline. */
import { describe, expect, it } from 'vitest';
import { MirrorsError } from '../../src/errors.js';
import { Batcher } from '../../src/worker/batcher.js';
import type { SourceTransaction, TargetTable } from '../../src/worker/changes.js';
import { classify, Fault, needsPerson } from '../../src/worker/faults.js';
import { slotGap, sourceMismatch } from '../../src/worker/gap.js';
import { CAUGHT_UP_GRACE_MS, lagMs } from '../../src/worker/lag.js';
import { ApplyPipeline } from '../../src/worker/pipeline.js';
import { CatalogChanged } from '../../src/worker/sink.js';

const table: TargetTable = {
  schema: 'public',
  name: 't',
  label: 'public.t',
  columns: ['id'],
  types: ['int'],
  key: [0],
  snapshotLsn: null,
};
const insert = (id: string) => ({ op: 'insert' as const, table, row: [id] });
const t0 = '2026-12-01 10:00:00+00';

describe('Batcher', () => {
  it('gathers whole transactions and says when the batch reached max_batch_size changes', () => {
    const b = new Batcher(3);
    b.begin(10n, t0, 0n);
    b.add(insert('1'));
    b.add(insert('2'));
    expect(b.commit(11n)).toBe(false);
    b.begin(20n, t0, 0n);
    b.add(insert('3'));
    expect(b.commit(21n)).toBe(true);
    const txns = b.take();
    expect(txns.map((t) => [t.finalLsn, t.endLsn, t.changes.length])).toEqual([
      [10n, 11n, 2],
      [20n, 21n, 1],
    ]);
    expect(b.size).toBe(0);
  });

  it('drops transactions committed before the applied position (invariant 5), changes and all', () => {
    const b = new Batcher(100);
    b.begin(10n, t0, 50n);
    expect(b.openLsn).toBeNull();
    b.add(insert('1'));
    expect(b.commit(11n)).toBe(false);
    expect(b.size).toBe(0);
  });

  it('keeps the open transaction out of take() and reports the oldest pending commit time', () => {
    const b = new Batcher(100);
    expect(b.oldestCommitMs()).toBeNull();
    b.begin(10n, t0, 0n);
    expect(b.oldestCommitMs()).toBe(Date.parse(t0));
    b.commit(11n);
    b.begin(20n, '2026-12-01 10:00:05+00', 0n);
    expect(b.take()).toHaveLength(1);
    expect(b.inTransaction).toBe(true);
    expect(b.oldestCommitMs()).toBe(Date.parse('2026-12-01 10:00:05+00'));
    b.discardOpen();
    expect(b.oldestCommitMs()).toBeNull();
  });
});

describe('lag', () => {
  const now = 1_000_000;
  it('is the age of the oldest pending commit while anything is pending', () => {
    expect(lagMs({ pendingSinceMs: now - 7_000, caughtUpAtMs: now - 100 }, now)).toBe(7_000);
  });
  it('is zero only within the grace of the last keepalive everything was applied up to', () => {
    expect(lagMs({ pendingSinceMs: null, caughtUpAtMs: now - CAUGHT_UP_GRACE_MS }, now)).toBe(0);
    expect(lagMs({ pendingSinceMs: null, caughtUpAtMs: now - CAUGHT_UP_GRACE_MS - 1 }, now)).toBe(
      CAUGHT_UP_GRACE_MS + 1,
    );
  });
  it('grows while the source is silent or the worker stopped (a keepalive that waited behind a backlog is old)', () => {
    expect(lagMs({ pendingSinceMs: null, caughtUpAtMs: now - 132_000 }, now)).toBe(132_000);
  });
  it('is unknown (null) before anything was received', () => {
    expect(lagMs({ pendingSinceMs: null, caughtUpAtMs: null }, now)).toBeNull();
  });
});

describe('slotGap', () => {
  const ok = { exists: true, plugin: 'pgoutput', confirmedFlushLsn: '0/3000', walStatus: 'reserved' };
  it('lets a slot stream that confirms no more than the mirror applied', () => {
    expect(slotGap('s', 'prod', ok, '0/3000')).toBeNull();
    expect(slotGap('s', 'prod', { ...ok, confirmedFlushLsn: '0/2000' }, '0/3000')).toBeNull();
  });
  it('refuses a slot that confirms beyond the mirror position: recreated by hand, streaming would skip the gap', () => {
    const f = slotGap('s', 'prod', { ...ok, confirmedFlushLsn: '0/3001' }, '0/3000');
    expect(f).toMatchObject({ kind: 'gap', code: 'MR162' });
    expect(f?.hint).toMatch(/mirrors plan/);
  });
  it('refuses a missing slot, another plugin, and lost WAL', () => {
    expect(slotGap('s', 'prod', { ...ok, exists: false, plugin: null }, '0/1')).toMatchObject({ code: 'MR160' });
    expect(slotGap('s', 'prod', { ...ok, plugin: 'test_decoding' }, '0/3000')).toMatchObject({ code: 'MR160' });
    expect(slotGap('s', 'prod', { ...ok, walStatus: 'lost' }, '0/3000')).toMatchObject({ code: 'MR161' });
  });
});

describe('sourceMismatch', () => {
  const id = { systemIdentifier: '7714504471607094334', databaseOid: '16384' };
  it('refuses another server or database than the one the slot was created on (MR163), passes the same or an unrecorded one', () => {
    expect(sourceMismatch('prod', id, { ...id, systemIdentifier: '1' })).toMatchObject({ kind: 'gap', code: 'MR163' });
    expect(sourceMismatch('prod', id, { ...id, databaseOid: '5' })).toMatchObject({ code: 'MR163' });
    expect(sourceMismatch('prod', id, id)).toBeNull();
    expect(sourceMismatch('prod', null, id)).toBeNull();
  });
});

describe('classify', () => {
  it('sorts what a session throws into the closed set of kinds', () => {
    expect(classify(new CatalogChanged('moved')).kind).toBe('catalog_changed');
    expect(classify(Object.assign(new Error('paused'), { code: 'MRPAU' })).kind).toBe('paused');
    expect(classify(Object.assign(new Error('permission denied'), { code: '42501' })).kind).toBe('fatal');
    expect(classify(new MirrorsError('PEER_AUTH_FAILED', 'authentication failed')).kind).toBe('fatal');
    expect(classify(new MirrorsError('PEER_UNREACHABLE', 'cannot connect')).kind).toBe('transient');
    expect(classify(Object.assign(new Error('terminating connection'), { code: '57P01' })).kind).toBe('transient');
    expect(classify(new Error('Connection terminated unexpectedly')).kind).toBe('transient');
    const drift = new Fault('drift', 'column extra', 'MR150');
    expect(classify(drift)).toBe(drift);
  });
  it('a destination that refuses the source rows (constraint, value, missing column) needs a person, not a reconnect', () => {
    const notNull = classify(Object.assign(new Error('null value in column "x"'), { code: '23502', table: 'users' }));
    expect(notNull).toMatchObject({ kind: 'drift', code: '23502' });
    expect(notNull.message).toMatch(/the destination refuses a change from the source \(table users\)/);
    expect(notNull.hint).toMatch(/--replace/);
    expect(classify(Object.assign(new Error('value too long'), { code: '22001' })).kind).toBe('drift');
    expect(classify(Object.assign(new Error('column "y" does not exist'), { code: '42703' })).kind).toBe('drift');
    expect(classify(Object.assign(new Error('canceling statement'), { code: '57014' })).kind).toBe('transient');
  });
  it('marks the kinds that need a person', () => {
    expect(['drift', 'gap', 'fatal'].every((k) => needsPerson(k as never))).toBe(true);
    expect(['transient', 'paused', 'catalog_changed', 'promoted'].some((k) => needsPerson(k as never))).toBe(false);
  });
});

describe('ApplyPipeline', () => {
  const txn = (n: number): SourceTransaction => ({
    finalLsn: BigInt(n),
    endLsn: BigInt(n + 1),
    commitTime: t0,
    commitTimeMs: n,
    changes: [],
  });

  it('applies batches in dispatch order, bounds those in flight, and reports the oldest pending commit', async () => {
    const order: number[] = [];
    const gates: (() => void)[] = [];
    const p = new ApplyPipeline(
      2,
      async (txns) => {
        await new Promise<void>((r) => gates.push(r));
        order.push(txns[0].commitTimeMs);
      },
      () => {},
    );
    p.dispatch([txn(1)]);
    expect(p.room()).toBeUndefined();
    p.dispatch([txn(2)]);
    expect(p.oldestCommitMs()).toBe(1);
    const room = p.room();
    expect(room).toBeInstanceOf(Promise);
    await new Promise((r) => setTimeout(r, 0));
    gates.shift()!();
    await room;
    expect(order).toEqual([1]);
    expect(p.oldestCommitMs()).toBe(2);
    await new Promise((r) => setTimeout(r, 0));
    gates.shift()!();
    await p.whenIdle();
    expect(order).toEqual([1, 2]);
    expect(p.idle).toBe(true);
  });

  it('runs nothing after a failed batch: a later batch never commits after a failed one', async () => {
    const applied: number[] = [];
    const failures: unknown[] = [];
    const p = new ApplyPipeline(
      5,
      async (txns) => {
        if (txns[0].commitTimeMs === 1) throw new Error('boom');
        applied.push(txns[0].commitTimeMs);
      },
      (e) => failures.push(e),
    );
    p.dispatch([txn(1)]);
    p.dispatch([txn(2)]);
    await expect(p.serial(async () => 'x')).rejects.toThrow(/stopped/);
    expect(applied).toEqual([]);
    expect(failures).toHaveLength(1);
    expect(p.failed).toBe(true);
  });

  it('drain gives up after its time limit when the destination does not answer', async () => {
    const p = new ApplyPipeline(
      2,
      () => new Promise(() => {}),
      () => {},
    );
    p.dispatch([txn(1)]);
    expect(await p.drain(50)).toBe(false);
  });
});
