/** status/collect.ts against a scripted client: the SQL sent, its parameters, and the row mapping. */
import { describe, expect, it } from 'vitest';
import {
  CATALOG_PROBE_SQL,
  SYNC_DEGRADED_SQL,
  LOCKS_SQL,
  SLOTS_SQL,
  catalogMirrorsSql,
  catalogTablesSql,
  collectStatus,
  readDestination,
  readSource,
} from '../../src/status/collect.js';
import type { Queryable } from '../../src/db/tx.js';
import { LOCK_CLASS_APPLY } from '../../src/apply/lock.js';
import { LEASE_CLASS } from '../../src/worker/lease-key.js';
import { config, mirror } from '../support/fixtures.js';

/** Answers each query with the rows of the first matching rule, recording every call. */
function scripted(
  rules: [(sql: string) => boolean, any[]][],
): Queryable & { calls: { sql: string; params?: unknown[] }[] } {
  const calls: { sql: string; params?: unknown[] }[] = [];
  return {
    calls,
    async query(sql: string, params?: unknown[]) {
      calls.push({ sql, params });
      const rule = rules.find(([match]) => match(sql));
      return { rows: rule ? rule[1] : [] };
    },
  };
}

const is = (text: string) => (sql: string) => sql === text;
const V5 = { worker: true, lagFacts: true };
const V4 = { worker: true, lagFacts: false };

describe('readDestination', () => {
  it('without a catalog: the probe and the lease only, in one read-only transaction', async () => {
    const db = scripted([
      [is(CATALOG_PROBE_SQL), [{ has_catalog: false, has_worker_columns: false, has_lag_facts: false }]],
      [
        is(LOCKS_SQL),
        [
          { name: 'a', lease_held: false, apply_lock_held: true },
          { name: 'b', lease_held: true, apply_lock_held: false },
        ],
      ],
    ]);
    const out = await readDestination(db, ['a', 'b']);
    expect(db.calls.map((c) => c.sql)).toEqual([
      'BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY',
      CATALOG_PROBE_SQL,
      LOCKS_SQL,
      'COMMIT',
    ]);
    expect(db.calls[2].params).toEqual([LEASE_CLASS, LOCK_CLASS_APPLY, ['a', 'b']]);
    expect(out.get('a')).toEqual({
      mirror: null,
      tables: [],
      leaseHeld: false,
      applyLockHeld: true,
      syncDegradedSince: null,
    });
    expect(out.get('b')).toEqual({
      mirror: null,
      tables: [],
      leaseHeld: true,
      applyLockHeld: false,
      syncDegradedSince: null,
    });
  });

  it('with a catalog: one query for the mirrors and one for the tables whatever their number, mapped to facts', async () => {
    const at = new Date('2026-01-01T00:00:00.123Z');
    const db = scripted([
      [
        is(CATALOG_PROBE_SQL),
        [{ has_catalog: true, has_worker_columns: true, has_lag_facts: true, has_sync_standbys: true }],
      ],
      [
        is(LOCKS_SQL),
        [
          { name: 'a', lease_held: true, apply_lock_held: true },
          { name: 'b', lease_held: false, apply_lock_held: false },
        ],
      ],
      [
        is(catalogMirrorsSql(V5)),
        [
          {
            name: 'a',
            mode: 'async',
            status: 'Following',
            phase: 'ready',
            paused: false,
            settings: { lag_threshold_ms: 5000 },
            slot_name: 'mirrors_a',
            last_applied_lsn: 'FFFFFFFF/FFFFFFFF',
            last_commit_time: at,
            rows_applied: '18446744073709551615',
            last_apply_at: null,
            bytes_done: '0',
            bytes_total: '0',
            last_error: { at: '2026-01-01T00:00:00.100Z', kind: 'fatal', code: 'XX000', message: 'x', hint: null },
            error_history: [{ at: '2026-01-01T00:00:00.100Z', kind: 'fatal', code: 'XX000', message: 'x' }, 'older'],
            promoted_at: null,
            lag_ms: '12',
            worker_host: 'h',
            worker_pid: 7,
            worker_since: at,
            worker_heartbeat_at: at,
            heartbeat_age_ms: '250',
            behind_since: at,
            caught_up_at: null,
            behind_since_age_ms: '9000',
            applied_through_age_ms: null,
            lock_host: 'ci',
            lock_pid: 99,
            lock_command: 'mirrors apply',
            lock_since: at,
            sync_pulse: { state: 'quorum', since: '2026-01-01T00:00:00.000Z', standby_names: 'ANY 1 ("mirrors_a")' },
          },
        ],
      ],
      [
        is(catalogTablesSql(V5)),
        [
          {
            mirror: 'a',
            source_schema: 'public',
            source_table: 't',
            dest_schema: 'copy',
            dest_table: 't',
            state: 'ready',
            snapshot_lsn: '0/1',
            rows_copied: '5',
            bytes_copied: '10',
            bytes_total: '10',
            rows_inserted: '1',
            rows_updated: '2',
            rows_deleted: '3',
          },
          {
            mirror: 'zz',
            source_schema: 'public',
            source_table: 'x',
            dest_schema: 'public',
            dest_table: 'x',
            state: 'ready',
          },
        ],
      ],
      [is(SYNC_DEGRADED_SQL), [{ mirror: 'b', since: '2026-01-01T00:00:05.000Z' }]],
    ]);
    const out = await readDestination(db, ['a', 'b']);
    expect(db.calls).toHaveLength(7);
    expect(db.calls[5].params).toEqual([['a', 'b']]);
    expect(db.calls[3].params).toEqual([['a', 'b']]);
    expect(db.calls[4].params).toEqual([['a', 'b']]);
    expect(out.get('a')!.mirror).toEqual({
      mode: 'async',
      reportedStatus: 'Following',
      phase: 'ready',
      paused: false,
      settings: { lag_threshold_ms: 5000 },
      slotName: 'mirrors_a',
      lastAppliedLsn: 'FFFFFFFF/FFFFFFFF',
      lastCommitTime: '2026-01-01T00:00:00.123Z',
      rowsApplied: '18446744073709551615',
      lastApplyAt: null,
      bytesDone: '0',
      bytesTotal: '0',
      lastError: { at: '2026-01-01T00:00:00.100Z', kind: 'fatal', code: 'XX000', message: 'x', hint: null, diff: null },
      errorHistory: [
        { at: '2026-01-01T00:00:00.100Z', kind: 'fatal', code: 'XX000', message: 'x', hint: null, diff: null },
        { at: null, kind: null, code: null, message: 'older', hint: null, diff: null },
      ],
      promotedAt: null,
      promotedUnfenced: false,
      syncPulse: { state: 'quorum', since: '2026-01-01T00:00:00.000Z' },
      lagMs: 12,
      lagFacts: {
        behindSince: '2026-01-01T00:00:00.123Z',
        caughtUpAt: null,
        behindSinceAgeMs: 9000,
        appliedThroughAgeMs: null,
        workerLive: true,
      },
      applyLockRow: { host: 'ci', pid: 99, command: 'mirrors apply', since: '2026-01-01T00:00:00.123Z' },
      worker: {
        host: 'h',
        pid: 7,
        since: '2026-01-01T00:00:00.123Z',
        heartbeatAt: '2026-01-01T00:00:00.123Z',
        heartbeatAgeMs: 250,
      },
    });
    expect(out.get('a')!.leaseHeld).toBe(true);
    expect(out.get('a')!.applyLockHeld).toBe(true);
    expect(out.get('a')!.tables).toEqual([
      {
        source: { schema: 'public', name: 't' },
        destination: { schema: 'copy', name: 't' },
        state: 'ready',
        snapshotLsn: '0/1',
        rowsCopied: '5',
        bytesCopied: '10',
        bytesTotal: '10',
        rowsInserted: '1',
        rowsUpdated: '2',
        rowsDeleted: '3',
        lastSchemaChange: null,
        pendingSchemaChange: null,
        merge: null,
        lastMerge: null,
      },
    ]);
    expect(out.get('b')).toEqual({
      mirror: null,
      tables: [],
      leaseHeld: false,
      applyLockHeld: false,
      syncDegradedSince: '2026-01-01T00:00:05.000Z',
    });
  });

  it('reads a catalog from before migration 5 without lag facts or history (lag falls back to lag_ms)', async () => {
    const db = scripted([
      [is(CATALOG_PROBE_SQL), [{ has_catalog: true, has_worker_columns: true, has_lag_facts: false }]],
      [is(LOCKS_SQL), [{ name: 'a', lease_held: false, apply_lock_held: false }]],
      [
        is(catalogMirrorsSql(V4)),
        [
          {
            name: 'a',
            status: 'Following',
            phase: 'ready',
            settings: null,
            last_error: null,
            error_history: null,
            lag_ms: '40',
            behind_since: null,
            lock_host: null,
          },
        ],
      ],
    ]);
    const m = (await readDestination(db, ['a'])).get('a')!.mirror!;
    expect(m).toMatchObject({
      lagFacts: null,
      lagMs: 40,
      lastError: null,
      errorHistory: null,
      applyLockRow: null,
      settings: {},
    });
    expect(catalogMirrorsSql(V4)).toContain('NULL::jsonb AS error_history');
    expect(catalogMirrorsSql(V4)).toContain('NULL::timestamptz AS behind_since');
    expect(catalogMirrorsSql(V4)).not.toContain('m.caught_up_at');
    // As mirrors.lag(): the last instant known applied is a keepalive's send time or the last applied commit.
    expect(catalogMirrorsSql(V5)).toContain(
      '(extract(epoch FROM clock_timestamp() - greatest(m.caught_up_at, m.last_commit_time)) * 1000)::bigint::text AS applied_through_age_ms',
    );
    expect(catalogMirrorsSql(V4)).toContain('LEFT JOIN mirrors.locks l ON l.mirror = m.name');
    expect(CATALOG_PROBE_SQL).toContain("attname = 'behind_since'");
  });

  it('reads a catalog from before migration 2 with NULLs for the worker columns', () => {
    const v1 = { worker: false, lagFacts: false };
    expect(catalogMirrorsSql(v1)).toContain('NULL::timestamptz AS worker_heartbeat_at');
    expect(catalogMirrorsSql(v1)).not.toContain('m.worker_');
    expect(catalogTablesSql(v1)).toContain(`'0'::text AS rows_inserted`);
    expect(catalogMirrorsSql(V5)).toContain('m.worker_heartbeat_at AS worker_heartbeat_at');
  });

  it('rolls back and rethrows when a query fails', async () => {
    const calls: string[] = [];
    const db: Queryable = {
      async query(sql: string) {
        calls.push(sql);
        if (sql === LOCKS_SQL) throw Object.assign(new Error('permission denied for view pg_locks'), { code: '42501' });
        return { rows: [{ has_catalog: true, has_worker_columns: true }] };
      },
    };
    await expect(readDestination(db, ['a'])).rejects.toThrow('permission denied');
    expect(calls.at(-1)).toBe('ROLLBACK');
  });

  it('looks for the lease and the apply lock in this database only, in the two-int4 key spaces of each', () => {
    expect(LEASE_CLASS).toBe(0x6d690002);
    expect(LOCK_CLASS_APPLY).toBe(0x6d690001);
    expect(LOCKS_SQL.match(/l\.database = d\.oid/g)).toHaveLength(2);
    expect(LOCKS_SQL.match(/l\.objsubid = 2 AND l\.granted/g)).toHaveLength(2);
    expect(LOCKS_SQL).toContain('l.classid = $1::int::oid');
    expect(LOCKS_SQL).toContain('l.classid = $2::int::oid');
  });
});

describe('readSource', () => {
  it('reads the current WAL position and every named slot in one query, LSNs and byte counts as text', async () => {
    const db = scripted([
      [
        is(SLOTS_SQL),
        [
          {
            name: 'mirrors_a',
            active: false,
            active_pid: null,
            confirmed_flush_lsn: '0/10',
            restart_lsn: '0/8',
            wal_status: 'reserved',
            current_lsn: '0/20',
            retained_bytes: '24',
          },
        ],
      ],
    ]);
    const out = await readSource(db, ['mirrors_a', 'mirrors_b']);
    expect(db.calls).toEqual([{ sql: SLOTS_SQL, params: [['mirrors_a', 'mirrors_b']] }]);
    expect(out.currentLsn).toBe('0/20');
    expect(out.slots.get('mirrors_a')).toEqual({
      name: 'mirrors_a',
      active: false,
      activePid: null,
      confirmedFlushLsn: '0/10',
      restartLsn: '0/8',
      walStatus: 'reserved',
      retainedBytes: '24',
    });
    expect(out.slots.has('mirrors_b')).toBe(false);
    expect(SLOTS_SQL).toContain('::bigint::text AS retained_bytes');
    expect(SLOTS_SQL).toContain('s.database = current_database()');
  });

  it('still has the position when no slot matches: the query returns one row with the slot columns NULL', async () => {
    const db = scripted([[is(SLOTS_SQL), [{ name: null, current_lsn: '16/B374D848' }]]]);
    const out = await readSource(db, ['mirrors_gone']);
    expect(out).toEqual({ currentLsn: '16/B374D848', standbyNames: null, slots: new Map() });
    expect(SLOTS_SQL).toContain('LEFT JOIN pg_replication_slots s ON');
  });
});

describe('collectStatus', () => {
  it('never throws for unreachable peers: each mirror carries the error of its destination and of its source', async () => {
    const c = config([mirror('a', ['public.t']), mirror('b', ['public.u'])]);
    for (const p of Object.values(c.peers)) p.port = 1; // nothing listens on port 1
    const facts = await collectStatus(c, ['a', 'b'], { connectTimeoutMs: 2000 });
    expect(facts.map((f) => f.name)).toEqual(['a', 'b']);
    for (const f of facts) {
      expect(f.destination.ok).toBe(false);
      expect(f.source?.ok).toBe(false);
      if (!f.destination.ok)
        expect(f.destination.error).toMatchObject({ peer: 'staging', role: 'destination', code: 'PEER_UNREACHABLE' });
      if (f.source && !f.source.ok)
        expect(f.source.error).toMatchObject({ peer: 'prod', role: 'source', code: 'PEER_UNREACHABLE' });
    }
  });
});
