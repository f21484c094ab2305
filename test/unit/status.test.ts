/** The status of a mirror from constructed facts (status/model.ts): no database. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import kleur from 'kleur';
import { renderStatusJson, renderStatusText } from '../../src/render/status.js';
import {
  HEARTBEAT_STALE_MS,
  mirrorReport,
  mirrorStatus,
  statusExitCode,
  statusReport,
  type CatalogMirrorFacts,
  type CatalogTableFacts,
  type LagFacts,
  type MirrorFacts,
  type PeerError,
  type SlotFacts,
} from '../../src/status/model.js';
import type { ErrorRecord } from '../../src/status/stored-error.js';

/** Migration 5 lag facts of a worker that has been behind for `ms` (the oldest unapplied commit is that old). */
function behind(ms: number): LagFacts {
  return {
    behindSince: '2026-01-01T00:00:00.960Z',
    behindSinceAgeMs: ms,
    caughtUpAt: null,
    appliedThroughAgeMs: null,
    workerLive: true,
  };
}

/** Migration 5 lag facts of a worker that last knew it had applied everything `ms` ago. */
function caughtUp(ms: number): LagFacts {
  return {
    behindSince: null,
    behindSinceAgeMs: null,
    caughtUpAt: '2026-01-01T00:00:00.000Z',
    appliedThroughAgeMs: ms,
    workerLive: true,
  };
}

function catalogMirror(over: Partial<CatalogMirrorFacts> = {}): CatalogMirrorFacts {
  return {
    mode: 'async',
    reportedStatus: 'Following',
    phase: 'ready',
    paused: false,
    settings: { mode: 'async', lag_threshold_ms: 5000 },
    slotName: 'mirrors_m',
    lastAppliedLsn: '16/B374D848',
    lastCommitTime: '2026-01-01T00:00:00.000Z',
    rowsApplied: '9007199254740993',
    lastApplyAt: '2026-01-01T00:00:01.000Z',
    bytesDone: '0',
    bytesTotal: '0',
    lastError: null,
    errorHistory: [],
    promotedAt: null,
    lagMs: null,
    lagFacts: behind(40),
    applyLockRow: null,
    worker: {
      host: 'w1',
      pid: 42,
      since: '2026-01-01T00:00:00.000Z',
      heartbeatAt: '2026-01-01T00:00:01.000Z',
      heartbeatAgeMs: 1000,
    },
    ...over,
  };
}

function tableFacts(name: string, over: Partial<CatalogTableFacts> = {}): CatalogTableFacts {
  return {
    source: { schema: 'public', name },
    destination: { schema: 'public', name },
    state: 'ready',
    snapshotLsn: '16/B0000000',
    rowsCopied: '100',
    bytesCopied: '8192',
    bytesTotal: '8192',
    rowsInserted: '9007199254740993',
    rowsUpdated: '2',
    rowsDeleted: '3',
    lastSchemaChange: null,
    pendingSchemaChange: null,
    merge: null,
    lastMerge: null,
    ...over,
  };
}

function slot(over: Partial<SlotFacts> = {}): SlotFacts {
  return {
    name: 'mirrors_m',
    active: true,
    activePid: 777,
    confirmedFlushLsn: '16/B374D848',
    restartLsn: '16/B3000000',
    walStatus: 'reserved',
    retainedBytes: '7657544',
    ...over,
  };
}

const err = (role: PeerError['role'], peer: string): PeerError => ({
  peer,
  role,
  code: 'PEER_UNREACHABLE',
  message: `peer ${peer} (127.0.0.1:1/app as u): cannot connect (ECONNREFUSED)`,
  hint: 'is the server running?',
});

/** A healthy, Following mirror; override any part. */
function facts(
  over: {
    mirror?: Partial<CatalogMirrorFacts> | null;
    tables?: CatalogTableFacts[];
    leaseHeld?: boolean;
    applyLockHeld?: boolean;
    slot?: Partial<SlotFacts> | null;
    currentLsn?: string | null;
    destinationDown?: boolean;
    sourceDown?: boolean;
    sourceNotRead?: boolean;
    configured?: Partial<MirrorFacts['configured']>;
    name?: string;
    standbyNames?: string;
    syncDegradedSince?: string | null;
  } = {},
): MirrorFacts {
  const name = over.name ?? 'm';
  return {
    name,
    sourcePeer: 'prod',
    destinationPeer: 'staging',
    configured: { mode: 'async', paused: false, lagThresholdMs: 5000, ...over.configured },
    destination: over.destinationDown
      ? { ok: false, error: err('destination', 'staging') }
      : {
          ok: true,
          value: {
            mirror: over.mirror === null ? null : catalogMirror(over.mirror),
            tables: over.tables ?? [tableFacts('users')],
            leaseHeld: over.leaseHeld ?? true,
            applyLockHeld: over.applyLockHeld ?? false,
            syncDegradedSince: over.syncDegradedSince ?? null,
          },
        },
    source: over.sourceNotRead
      ? null
      : over.sourceDown
        ? { ok: false, error: err('source', 'prod') }
        : {
            ok: true,
            value: {
              slot: over.slot === null ? null : slot(over.slot),
              currentLsn: over.currentLsn === undefined ? '16/B374D848' : over.currentLsn,
              standbyNames: over.standbyNames ?? '',
            },
          },
  };
}

const gapError: ErrorRecord = {
  at: '2026-01-01T00:00:02.000Z',
  kind: 'gap',
  code: 'MR_GAP',
  message: 'the slot starts at 16/C0000000, after the applied position 16/B374D848',
  hint: 'mirrors plan shows how to resync',
  diff: null,
};
const refused: ErrorRecord = {
  at: '2026-01-01T00:00:03.000Z',
  kind: 'transient',
  code: 'PEER_UNREACHABLE',
  message: 'peer prod: cannot connect (ECONNREFUSED)',
  hint: 'is the server running?',
  diff: null,
};
const lockRow = { host: 'ci-7', pid: 4242, command: 'mirrors apply --auto-approve', since: '2026-01-01T00:00:00.500Z' };
const heartbeat = (heartbeatAgeMs: number | null) => ({ ...catalogMirror().worker, heartbeatAgeMs });

describe('mirrorStatus', () => {
  it('is Following when a worker holds the lease, its heartbeat is fresh, it reports Following or Degraded and the lag is under the threshold', () => {
    expect(mirrorStatus(facts())).toEqual({ name: 'Following', reason: 'streaming, lag 40 ms' });
    expect(mirrorStatus(facts({ mirror: { reportedStatus: 'Degraded' } })).name).toBe('Following');
    expect(mirrorStatus(facts({ mirror: { lagFacts: caughtUp(1000) } }))).toEqual({
      name: 'Following',
      reason: 'streaming, lag 0 ms',
    });
    expect(mirrorStatus(facts({ mirror: { lagFacts: { ...caughtUp(0), appliedThroughAgeMs: null } } }))).toEqual({
      name: 'Following',
      reason: 'streaming',
    });
  });

  it('is not Following when the lease holder reports anything else', () => {
    expect(mirrorStatus(facts({ mirror: { reportedStatus: 'Standby' } }))).toEqual({
      name: 'Disconnected',
      reason: 'the worker holding the lease reports Standby, not streaming',
    });
    expect(mirrorStatus(facts({ mirror: { reportedStatus: 'Stopped', lastError: refused } }))).toEqual({
      name: 'Disconnected',
      reason:
        'the worker holding the lease reports Stopped, not streaming; last error at 2026-01-01T00:00:03.000Z: peer prod: cannot connect (ECONNREFUSED) (PEER_UNREACHABLE); hint: is the server running?',
    });
  });

  it('says Paused, resuming, while the worker has not yet picked up `paused: false`', () => {
    expect(mirrorStatus(facts({ mirror: { reportedStatus: 'Paused' } }))).toEqual({
      name: 'Paused',
      reason: 'resuming: the worker has not picked up `paused: false` yet',
    });
  });

  it('is NotCreated when the catalog has no row for the mirror, naming a running apply', () => {
    const s = mirrorStatus(facts({ mirror: null, sourceNotRead: true }));
    expect(s.name).toBe('NotCreated');
    expect(s.reason).toContain('run mirrors apply');
    expect(mirrorStatus(facts({ mirror: null, sourceNotRead: true, applyLockHeld: true }))).toEqual({
      name: 'NotCreated',
      reason: 'not in the catalog of peer staging yet: an apply holds its lock',
    });
  });

  it('is Promoted when promoted_at is set, whatever else is true (the source may be gone for good)', () => {
    expect(
      mirrorStatus(
        facts({
          mirror: { promotedAt: '2026-02-02T00:00:00.000Z', lastError: gapError, reportedStatus: 'Failed' },
          leaseHeld: false,
          sourceNotRead: true,
          configured: { paused: true },
        }),
      ),
    ).toEqual({
      name: 'Promoted',
      reason: 'promoted at 2026-02-02T00:00:00.000Z',
      promoted_at: '2026-02-02T00:00:00.000Z',
    });
  });

  it('a Promoted mirror has no lag and no current error; promoted without a fence, it says so', () => {
    const f = facts({
      mirror: { promotedAt: '2026-02-02T00:00:00.000Z', lastError: gapError, promotedUnfenced: true },
      leaseHeld: false,
    });
    const r = mirrorReport(f);
    expect(r.status.reason).toMatch(/without a fence: its source could not be reached/);
    expect([r.lag_ms, r.lag_bytes, r.last_error]).toEqual([null, null, null]);
  });

  it('is Paused when the config or the catalog says so, before anything about the worker', () => {
    expect(mirrorStatus(facts({ configured: { paused: true }, leaseHeld: false })).name).toBe('Paused');
    const s = mirrorStatus(facts({ mirror: { paused: true }, sourceDown: true }));
    expect(s.name).toBe('Paused');
    expect(s.reason).toContain('paused in the catalog');
    expect(mirrorStatus(facts({ mirror: { paused: true, reportedStatus: 'Failed', lastError: gapError } })).name).toBe(
      'Paused',
    );
  });

  it('is Bootstrapping with its progress while the snapshot phase is not ready', () => {
    expect(
      mirrorStatus(
        facts({ mirror: { phase: 'snapshot', bytesDone: '100', bytesTotal: '9007199254740993' }, leaseHeld: false }),
      ),
    ).toEqual({
      name: 'Bootstrapping',
      reason: 'snapshot not finished (phase snapshot); run mirrors apply to complete it',
      bytes_done: '100',
      bytes_total: '9007199254740993',
    });
    expect(mirrorStatus(facts({ mirror: { phase: 'created' }, slot: null })).name).toBe('Bootstrapping');
  });

  it('names the apply copying the snapshot (its mirrors.locks row) instead of asking for one', () => {
    const copying = (over: { applyLockHeld: boolean; applyLockRow: typeof lockRow | null }) =>
      mirrorStatus(
        facts({ mirror: { phase: 'snapshot', applyLockRow: over.applyLockRow }, applyLockHeld: over.applyLockHeld }),
      ).reason;
    expect(copying({ applyLockHeld: true, applyLockRow: lockRow })).toBe(
      'snapshot in progress (phase snapshot): `mirrors apply --auto-approve` (pid 4242 on ci-7, since 2026-01-01T00:00:00.500Z) holds the apply lock',
    );
    expect(copying({ applyLockHeld: true, applyLockRow: null })).toBe(
      'snapshot in progress (phase snapshot): an apply holds the apply lock',
    );
    // The lock died with its session (kill -9): the row is left behind, the lock is not held.
    expect(copying({ applyLockHeld: false, applyLockRow: lockRow })).toBe(
      'snapshot not finished (phase snapshot); run mirrors apply to complete it (the last apply, `mirrors apply --auto-approve` (pid 4242 on ci-7, since 2026-01-01T00:00:00.500Z), was interrupted)',
    );
  });

  it('is Bootstrapping while the worker of a streaming mirror starts; tables an apply copies meanwhile do not hold it up', () => {
    const copying = tableFacts('orders', { state: 'copying', bytesCopied: '1024', bytesTotal: '4096' });
    expect(mirrorStatus(facts({ mirror: { reportedStatus: 'Bootstrapping' } }))).toMatchObject({
      name: 'Bootstrapping',
      reason: 'the worker is starting',
    });
    expect(
      mirrorStatus(facts({ mirror: { reportedStatus: 'Following' }, tables: [tableFacts('users'), copying] })),
    ).toMatchObject({
      name: 'Following',
    });
  });

  it('is Failed when the catalog says Failed, whether or not a worker holds the lease, with the error', () => {
    const expected = {
      name: 'Failed',
      reason:
        'the worker cannot go on without a person (gap): at 2026-01-01T00:00:02.000Z: the slot starts at 16/C0000000, after the applied position 16/B374D848 (MR_GAP); hint: mirrors plan shows how to resync',
      error: 'the slot starts at 16/C0000000, after the applied position 16/B374D848 (MR_GAP)',
    };
    for (const leaseHeld of [true, false])
      expect(mirrorStatus(facts({ mirror: { reportedStatus: 'Failed', lastError: gapError }, leaseHeld }))).toEqual(
        expected,
      );
    // Even when status cannot read the source: the worker's verdict stands.
    expect(
      mirrorStatus(facts({ mirror: { reportedStatus: 'Failed', lastError: gapError }, sourceDown: true })).name,
    ).toBe('Failed');
    expect(mirrorStatus(facts({ mirror: { reportedStatus: 'Failed' } }))).toEqual({
      name: 'Failed',
      reason: 'the worker marked the mirror Failed without recording an error',
      error: 'the worker marked the mirror Failed without recording an error',
    });
  });

  it('is not Failed for an error alone: a transient one while no worker runs is Disconnected and says it', () => {
    expect(
      mirrorStatus(facts({ mirror: { reportedStatus: 'Disconnected', lastError: refused }, leaseHeld: false })),
    ).toEqual({
      name: 'Disconnected',
      reason:
        'no worker holds the lease (is mirrors run running?); last error at 2026-01-01T00:00:03.000Z: peer prod: cannot connect (ECONNREFUSED) (PEER_UNREACHABLE); hint: is the server running?',
    });
    // A permanent error left over once a person has resynced (status no longer Failed) is not the reason.
    expect(
      mirrorStatus(facts({ mirror: { reportedStatus: 'Bootstrapping', lastError: gapError }, leaseHeld: false })),
    ).toEqual({ name: 'Disconnected', reason: 'no worker holds the lease (is mirrors run running?)' });
  });

  it('is Disconnected with the last error while the lease holder reconnects', () => {
    expect(mirrorStatus(facts({ mirror: { reportedStatus: 'Disconnected', lastError: refused } }))).toEqual({
      name: 'Disconnected',
      reason:
        'the worker is reconnecting after an error at 2026-01-01T00:00:03.000Z: peer prod: cannot connect (ECONNREFUSED) (PEER_UNREACHABLE); hint: is the server running?',
    });
    expect(mirrorStatus(facts({ mirror: { reportedStatus: 'Disconnected' } })).reason).toBe(
      'the worker is reconnecting',
    );
  });

  it('is Failed when the slot is missing or has lost WAL: reconnecting cannot fix that', () => {
    expect(mirrorStatus(facts({ slot: null }))).toMatchObject({
      name: 'Failed',
      error: 'replication slot mirrors_m does not exist on peer prod',
    });
    expect(mirrorStatus(facts({ slot: { walStatus: 'lost' } }))).toMatchObject({
      name: 'Failed',
      error: 'replication slot mirrors_m on peer prod lost WAL it still needed',
    });
  });

  it('is Disconnected when no worker holds the lease, its heartbeat is stale or missing, or a peer is unreachable', () => {
    expect(mirrorStatus(facts({ leaseHeld: false }))).toEqual({
      name: 'Disconnected',
      reason: 'no worker holds the lease (is mirrors run running?)',
    });
    expect(mirrorStatus(facts({ mirror: { worker: heartbeat(HEARTBEAT_STALE_MS + 1) } }))).toEqual({
      name: 'Disconnected',
      reason: "the worker's last heartbeat is 15s old",
    });
    expect(
      mirrorStatus(facts({ mirror: { worker: heartbeat(HEARTBEAT_STALE_MS + 1), lastError: refused } })).reason,
    ).toBe(
      "the worker's last heartbeat is 15s old; last error at 2026-01-01T00:00:03.000Z: peer prod: cannot connect (ECONNREFUSED) (PEER_UNREACHABLE); hint: is the server running?",
    );
    expect(mirrorStatus(facts({ mirror: { worker: heartbeat(HEARTBEAT_STALE_MS) } })).name).toBe('Following');
    expect(
      mirrorStatus(
        facts({ mirror: { worker: { host: null, pid: null, since: null, heartbeatAt: null, heartbeatAgeMs: null } } }),
      ).reason,
    ).toContain('never sent a heartbeat');
    expect(mirrorStatus(facts({ sourceDown: true }))).toEqual({
      name: 'Disconnected',
      reason: 'peer prod (127.0.0.1:1/app as u): cannot connect (ECONNREFUSED)',
    });
    expect(mirrorStatus(facts({ destinationDown: true }))).toEqual({
      name: 'Disconnected',
      reason: 'peer staging (127.0.0.1:1/app as u): cannot connect (ECONNREFUSED)',
    });
  });

  it('is Degraded when the lag is over the configured threshold, else the catalog threshold, else the mode default', () => {
    expect(mirrorStatus(facts({ mirror: { lagFacts: behind(5001) } }))).toEqual({
      name: 'Degraded',
      reason: 'lag 5001 ms is over the threshold of 5000 ms',
      lag_ms: 5001,
      lag_threshold_ms: 5000,
    });
    expect(mirrorStatus(facts({ mirror: { lagFacts: behind(5000) } })).name).toBe('Following');
    expect(mirrorStatus(facts({ mirror: { lagFacts: behind(300) }, configured: { lagThresholdMs: 200 } })).name).toBe(
      'Degraded',
    );
    expect(
      mirrorStatus(
        facts({
          mirror: { lagFacts: behind(300), settings: { lag_threshold_ms: 250 } },
          configured: { lagThresholdMs: undefined },
        }),
      ).name,
    ).toBe('Degraded');
    expect(
      mirrorStatus(
        facts({
          mirror: { lagFacts: behind(300), settings: {} },
          configured: { lagThresholdMs: undefined, mode: 'sync' },
        }),
      ).name,
    ).toBe('Degraded');
    expect(
      mirrorStatus(
        facts({
          mirror: { lagFacts: behind(300), settings: {} },
          configured: { lagThresholdMs: undefined, mode: 'async' },
        }),
      ).name,
    ).toBe('Following');
  });

  it('is Degraded when a live worker hears nothing from the source: quiet time past 5 s is lag, like mirrors.lag()', () => {
    expect(mirrorStatus(facts({ mirror: { lagFacts: caughtUp(5000) } })).name).toBe('Following');
    expect(mirrorStatus(facts({ mirror: { lagFacts: caughtUp(12_000) } }))).toMatchObject({
      name: 'Degraded',
      lag_ms: 12_000,
    });
  });

  it('on a catalog before migration 5, counts the worker-reported lag plus heartbeat silence past 5 s', () => {
    const legacy = { lagFacts: null, lagMs: 0, errorHistory: null };
    expect(mirrorStatus(facts({ mirror: { ...legacy, worker: heartbeat(12_000) } }))).toMatchObject({
      name: 'Degraded',
      lag_ms: 7000,
    });
    expect(mirrorStatus(facts({ mirror: { ...legacy, lagMs: 40 } }))).toEqual({
      name: 'Following',
      reason: 'streaming, lag 40 ms',
    });
  });
});

describe('mirrorReport', () => {
  it('carries the position, lag, worker, slot and tables, 64-bit values as exact strings', () => {
    const r = mirrorReport(
      facts({
        tables: [tableFacts('users'), tableFacts('orders', { rowsInserted: '1', rowsUpdated: '0', rowsDeleted: '0' })],
        currentLsn: 'FFFFFFFF/FFFFFFFF',
        mirror: { lastAppliedLsn: '0/0' },
      }),
    );
    expect(r.rows).toEqual({ inserted: '9007199254740994', updated: '2', deleted: '3', total: '9007199254740999' });
    expect(r.rows_applied).toBe('9007199254740993');
    expect(r.lag_bytes).toBe('18446744073709551615');
    expect(r.worker).toEqual({
      lease_held: true,
      host: 'w1',
      pid: 42,
      since: '2026-01-01T00:00:00.000Z',
      heartbeat_at: '2026-01-01T00:00:01.000Z',
      heartbeat_age_ms: 1000,
    });
    expect(r.slot).toEqual({
      name: 'mirrors_m',
      exists: true,
      active: true,
      active_pid: 777,
      confirmed_flush_lsn: '16/B374D848',
      restart_lsn: '16/B3000000',
      wal_status: 'reserved',
      retained_bytes: '7657544',
      current_lsn: 'FFFFFFFF/FFFFFFFF',
    });
    expect(r.tables[1]).toEqual({
      source: { schema: 'public', name: 'orders' },
      destination: { schema: 'public', name: 'orders' },
      state: 'ready',
      snapshot_lsn: '16/B0000000',
      rows_copied: '100',
      bytes_copied: '8192',
      bytes_total: '8192',
      rows_inserted: '1',
      rows_updated: '0',
      rows_deleted: '0',
      last_schema_change: null,
      pending_schema_change: null,
      merge: null,
      last_merge: null,
    });
    expect(r.errors).toEqual([]);
  });

  it("measures lag bytes from the mirror's last_applied_lsn, not the slot's confirmed position", () => {
    const r = mirrorReport(
      facts({
        currentLsn: '16/B384D848',
        mirror: { lastAppliedLsn: '16/B364D848' },
        slot: { confirmedFlushLsn: '16/B374D848' },
      }),
    );
    expect(r.lag_bytes).toBe('2097152');
    expect(mirrorReport(facts({ currentLsn: null })).lag_bytes).toBeNull(); // a standby source
    expect(mirrorReport(facts({ sourceDown: true })).lag_bytes).toBeNull();
    expect(mirrorReport(facts({ mirror: { lastAppliedLsn: null, phase: 'created' } })).lag_bytes).toBeNull();
    // The position is read even when the slot is gone: how much a resync has to catch up.
    expect(mirrorReport(facts({ slot: null, currentLsn: '16/B375D848' })).lag_bytes).toBe('65536');
  });

  it('shows a stopped, stalled or failed worker with a lag that grows', () => {
    const stopped = (ages: LagFacts) => mirrorReport(facts({ leaseHeld: false, mirror: { lagFacts: ages } }));
    expect(stopped(caughtUp(60_000))).toMatchObject({ status: { name: 'Disconnected' }, lag_ms: 60_000 });
    expect(stopped(caughtUp(120_000)).lag_ms).toBe(120_000);
    expect(stopped(behind(90_000)).lag_ms).toBe(90_000);
    const failed = mirrorReport(
      facts({ mirror: { reportedStatus: 'Failed', lastError: gapError, lagFacts: behind(300_000) } }),
    );
    expect(failed).toMatchObject({ status: { name: 'Failed' }, lag_ms: 300_000 });
    expect(
      mirrorReport(facts({ mirror: { lagFacts: { ...caughtUp(0), appliedThroughAgeMs: null } } })).lag_ms,
    ).toBeNull();
  });

  it('carries the lag facts, the typed last error and its history, and the apply lock', () => {
    const r = mirrorReport(
      facts({
        mirror: {
          reportedStatus: 'Failed',
          lastError: gapError,
          errorHistory: [gapError, refused],
          lagFacts: behind(7000),
          applyLockRow: lockRow,
        },
      }),
    );
    expect(r).toMatchObject({
      reported_status: 'Failed',
      lag_ms: 7000,
      behind_since: '2026-01-01T00:00:00.960Z',
      caught_up_at: null,
      last_error: gapError,
      error_history: [gapError, refused],
      apply_lock: { held: false, ...lockRow },
    });
    expect(mirrorReport(facts({ applyLockHeld: true })).apply_lock).toEqual({
      held: true,
      host: null,
      pid: null,
      command: null,
      since: null,
    });
    expect(mirrorReport(facts({ mirror: { lagFacts: caughtUp(9000) } }))).toMatchObject({
      behind_since: null,
      caught_up_at: '2026-01-01T00:00:00.000Z',
    });
    const legacy = mirrorReport(facts({ mirror: { lagFacts: null, errorHistory: null } }));
    expect(legacy).toMatchObject({ behind_since: null, caught_up_at: null, error_history: null });
  });

  it('has nulls, no tables and the error when the destination is unreachable; a missing slot is exists: false', () => {
    const down = mirrorReport(facts({ destinationDown: true, sourceDown: true }));
    expect(down.errors.map((e) => e.role)).toEqual(['destination', 'source']);
    expect(down).toMatchObject({
      phase: null,
      last_applied_lsn: null,
      rows_applied: null,
      tables: [],
      slot: null,
      worker: { lease_held: null },
      apply_lock: null,
      last_error: null,
      error_history: null,
      lag_ms: null,
      lag_bytes: null,
    });
    expect(mirrorReport(facts({ slot: null })).slot).toMatchObject({ name: 'mirrors_m', exists: false, active: null });
  });

  it('is JSON-serializable as is (no BigInt, no Date)', () => {
    const r = mirrorReport(facts());
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });
});

describe('statusReport and the exit code', () => {
  const report = (fs: MirrorFacts[]) =>
    statusReport({
      configFile: '/x/mirrors.yaml',
      createdBy: 'mirrors test',
      generatedAt: '2026-01-01T00:00:05.000Z',
      facts: fs,
    });

  it('sorts mirrors by name and counts every status, zeros included', () => {
    const r = report([facts({ name: 'b' }), facts({ name: 'a', leaseHeld: false })]);
    expect(r.mirrors.map((m) => m.name)).toEqual(['a', 'b']);
    expect(r.summary).toEqual({
      total: 2,
      by_status: {
        NotCreated: 0,
        Bootstrapping: 0,
        Following: 1,
        Degraded: 0,
        Disconnected: 1,
        Paused: 0,
        Failed: 0,
        Promoted: 0,
      },
    });
    expect(r.ok).toBe(false);
    expect(statusExitCode(r)).toBe(2);
  });

  it('exits 0 only when every mirror is Following', () => {
    expect(statusExitCode(report([facts({ name: 'a' }), facts({ name: 'b' })]))).toBe(0);
    expect(statusExitCode(report([facts({ name: 'a' }), facts({ name: 'b', configured: { paused: true } })]))).toBe(2);
    // A promoted mirror is done, not a problem: a cron job must not alert forever after a promotion.
    expect(
      statusExitCode(
        report([facts({ name: 'a' }), facts({ name: 'p', mirror: { promotedAt: '2026-02-02T00:00:00.000Z' } })]),
      ),
    ).toBe(0);
    expect(statusExitCode(report([facts({ mirror: null })]))).toBe(2);
    expect(statusExitCode(report([]))).toBe(0);
  });
});

describe('text and JSON rendering', () => {
  const was = kleur.enabled;
  beforeAll(() => (kleur.enabled = false));
  afterAll(() => (kleur.enabled = was));
  const report = (fs: MirrorFacts[]) =>
    statusReport({
      configFile: '/x/mirrors.yaml',
      createdBy: 'mirrors test',
      generatedAt: '2026-01-01T00:00:05.000Z',
      facts: fs,
    });

  it('shows a merge resync under way in the table state: waiting, then its chunk and key', () => {
    const merge = { requested_at: '2026-01-01T00:00:00Z', key: ['id'], chunk_rows: 2000 };
    const text = renderStatusText(
      report([
        facts({
          name: 'a',
          tables: [
            tableFacts('users', { merge }),
            tableFacts('orders', { merge: { ...merge, chunks: 3, cursor: ['6000'] } }),
          ],
        }),
      ]),
    );
    expect(text).toContain('public.users   ready, merging (waiting for the worker)');
    expect(text).toContain('public.orders  ready, merging (chunk 3, after key (6000))');
  });

  it('renders a compact block per mirror and one summary line', () => {
    const text = renderStatusText(
      report([
        facts({
          name: 'a',
          tables: [
            tableFacts('users'),
            tableFacts('x', {
              source: { schema: 'Sales Dept', name: 'Order Items' },
              destination: { schema: 'public', name: 'order_items' },
            }),
          ],
        }),
        facts({
          name: 'b',
          leaseHeld: false,
          mirror: { worker: { host: null, pid: null, since: null, heartbeatAt: null, heartbeatAgeMs: null } },
        }),
        facts({ name: 'c', mirror: null, sourceNotRead: true }),
        facts({ name: 'd', destinationDown: true, sourceDown: true }),
      ]),
    );
    expect(text).toContain('a  prod -> staging  async  Following  streaming, lag 40 ms\n');
    expect(text).toContain('  applied    16/B374D848  lag 40ms, 0 B of WAL (threshold 5s)\n');
    expect(text).toContain(
      'last commit 2026-01-01T00:00:00.000Z (5s ago), last apply 2026-01-01T00:00:01.000Z (4s ago)',
    );
    expect(text).toContain(
      '  rows       9007199254740993 applied (tables: 18014398509481986 inserted, 4 updated, 6 deleted)\n',
    );
    expect(text).toContain(
      '  worker     holds the lease; last: w1 pid 42 since 2026-01-01T00:00:00.000Z, heartbeat 1s ago\n',
    );
    expect(text).toContain(
      '  slot       mirrors_m  active  wal_status reserved  retained 7.3 MB  confirmed 16/B374D848\n',
    );
    expect(text).toMatch(/ {4}SOURCE +DESTINATION +STATE +SNAPSHOT LSN +COPIED +INSERTED +UPDATED +DELETED\n/);
    expect(text).toContain(
      '    "Sales Dept"."Order Items"  public.order_items  ready  16/B0000000      100  9007199254740993        2        3\n',
    );
    expect(text).toContain(
      'b  prod -> staging  async  Disconnected  no worker holds the lease (is mirrors run running?)\n',
    );
    expect(text).toContain('  worker     no lease holder; last: none recorded\n');
    expect(text).toContain(
      'c  prod -> staging  async  NotCreated  not in the catalog of peer staging; run mirrors apply\n\n',
    );
    expect(text).toContain(
      'd  prod -> staging  async  Disconnected  peer staging (127.0.0.1:1/app as u): cannot connect (ECONNREFUSED)\n             hint: is the server running?\n  error      peer prod (127.0.0.1:1/app as u): cannot connect (ECONNREFUSED)\n',
    );
    expect(text).toContain('             hint: is the server running?\n');
    expect(text.trimEnd().split('\n').at(-1)).toBe('4 mirrors: 1 NotCreated, 1 Following, 2 Disconnected.');
    expect(text).not.toMatch(/\x1b\[/);
  });

  it('shows bootstrap progress and the degraded lag', () => {
    const text = renderStatusText(
      report([
        facts({ mirror: { phase: 'snapshot', bytesDone: '1048576', bytesTotal: '4194304' } }),
        facts({ name: 'n', mirror: { lagFacts: behind(90_000) } }),
      ]),
    );
    expect(text).toContain(
      'm  prod -> staging  async  Bootstrapping 1.0 MB of 4.0 MB  snapshot not finished (phase snapshot)',
    );
    expect(text).toContain('  snapshot   phase snapshot, 1.0 MB of 4.0 MB copied\n');
    expect(text).toContain(
      'n  prod -> staging  async  Degraded lag 1m30s  lag 90000 ms is over the threshold of 5000 ms',
    );
  });

  it('colors statuses: green Following, yellow Degraded, red Disconnected', () => {
    kleur.enabled = true;
    try {
      const text = renderStatusText(
        report([
          facts({ name: 'a' }),
          facts({ name: 'b', mirror: { lagFacts: behind(9000) } }),
          facts({ name: 'c', leaseHeld: false }),
        ]),
      );
      expect(text).toContain(kleur.green(kleur.bold('Following')));
      expect(text).toContain(kleur.yellow(kleur.bold('Degraded')));
      expect(text).toContain(kleur.red(kleur.bold('Disconnected')));
    } finally {
      kleur.enabled = false;
    }
  });

  it('shows the last error with its time, kind, code and hint, and how many earlier errors the catalog keeps', () => {
    const text = renderStatusText(
      report([
        facts({
          name: 'f',
          mirror: { reportedStatus: 'Failed', lastError: gapError, errorHistory: [gapError, refused, refused] },
        }),
        facts({ name: 'g', leaseHeld: false, mirror: { lastError: { ...refused, at: null, kind: null } } }),
        facts({ name: 'h', mirror: { errorHistory: [refused] } }),
      ]),
    );
    expect(text).toContain(
      'f  prod -> staging  async  Failed  the worker cannot go on without a person (gap): at 2026-01-01T00:00:02.000Z: ',
    );
    expect(text).toContain(
      '  last err   2026-01-01T00:00:02.000Z (3s ago)  gap  MR_GAP  the slot starts at 16/C0000000, after the applied position 16/B374D848\n' +
        '             hint: mirrors plan shows how to resync\n' +
        '             2 earlier errors in error_history\n',
    );
    expect(text).toContain('  last err   PEER_UNREACHABLE  peer prod: cannot connect (ECONNREFUSED)\n');
    // Cleared once the worker streams again; the history remains.
    expect(text).toContain(
      '  errors     1 error in error_history, the newest 2026-01-01T00:00:03.000Z (2s ago): peer prod: cannot connect (ECONNREFUSED)\n',
    );
    expect(text.match(/ {2}last err {3}/g)).toHaveLength(2);
  });

  it("shows a drift error's diff of the table definitions under it", () => {
    const drift: ErrorRecord = {
      ...gapError,
      kind: 'drift',
      code: 'MR_DRIFT',
      message: 'public.t differs from its destination',
      hint: null,
      diff: '--- source public.t\n+++ destination public.t\n-  v text\n+  v integer\n',
    };
    const text = renderStatusText(report([facts({ mirror: { reportedStatus: 'Failed', lastError: drift } })]));
    expect(text).toContain(
      'MR_DRIFT  public.t differs from its destination\n' +
        '               --- source public.t\n' +
        '               +++ destination public.t\n' +
        '               -  v text\n' +
        '               +  v integer\n',
    );
  });

  it('shows who holds the apply lock while apply copies', () => {
    const text = renderStatusText(
      report([
        facts({ name: 'a', applyLockHeld: true, mirror: { phase: 'snapshot', applyLockRow: lockRow } }),
        facts({ name: 'b', applyLockHeld: true, mirror: { phase: 'snapshot' } }),
        facts({ name: 'c', mirror: { phase: 'snapshot', applyLockRow: lockRow } }),
      ]),
    );
    expect(text).toContain(
      '  apply      `mirrors apply --auto-approve` pid 4242 on ci-7 since 2026-01-01T00:00:00.500Z (5s ago) holds the apply lock\n',
    );
    expect(text).toContain('  apply      an apply holds the apply lock (its holder is not recorded yet)\n');
    expect(text.match(/ {2}apply {6}/g)).toHaveLength(2); // not for the stale row of c
  });

  it('shows a growing lag for a worker that stopped', () => {
    const text = renderStatusText(
      report([facts({ leaseHeld: false, mirror: { lagFacts: caughtUp(125_000) }, currentLsn: '16/B384D848' })]),
    );
    expect(text).toContain('m  prod -> staging  async  Disconnected  no worker holds the lease');
    expect(text).toContain('  applied    16/B374D848  lag 2m05s, 1.0 MB of WAL (threshold 5s)\n');
  });

  it('says so when no mirror is selected', () => {
    expect(renderStatusText(report([]))).toBe('No mirrors selected.\n');
  });

  it('renders JSON as the report itself, versioned', () => {
    const r = report([facts()]);
    const parsed = JSON.parse(renderStatusJson(r));
    expect(parsed).toEqual(r);
    expect(parsed.format_version).toBe(1);
    expect(Object.keys(parsed)).toEqual([
      'format_version',
      'tool',
      'created_by',
      'generated_at',
      'config_file',
      'ok',
      'summary',
      'mirrors',
    ]);
  });
});

describe('a sync mirror: whether source commits wait for it', () => {
  const sync = { mode: 'sync', lagThresholdMs: 100 };
  const listed = 'ANY 1 ("mirrors_m")';
  it('is Following while the source counts its walsender synchronous, with since when the worker saw it so', () => {
    const f = facts({
      configured: sync,
      slot: { syncState: 'quorum' },
      standbyNames: listed,
      mirror: { syncPulse: { state: 'quorum', since: '2026-01-01T00:00:00.000Z' } },
    });
    expect(mirrorStatus(f).name).toBe('Following');
    expect(mirrorReport(f).sync).toEqual({
      state: 'quorum',
      synchronous: true,
      since: '2026-01-01T00:00:00.000Z',
      listed: true,
      synchronous_standby_names: listed,
      degraded_since: null,
    });
  });
  it('is Degraded when it streams but is not in synchronous_standby_names (not planned yet, or taken out)', () => {
    const s = mirrorStatus(facts({ configured: sync, slot: { syncState: 'async' }, standbyNames: '' }));
    expect(s).toMatchObject({ name: 'Degraded', lag_ms: expect.any(Number) });
    expect(s.reason).toMatch(/do not wait for it: not in synchronous_standby_names \(run mirrors plan\)/);
    const degraded = mirrorStatus(
      facts({
        configured: sync,
        slot: { syncState: 'async' },
        standbyNames: '',
        syncDegradedSince: '2026-01-01T00:00:05.000Z',
      }),
    );
    expect(degraded.reason).toMatch(/degrade policy took it out .* at 2026-01-01T00:00:05.000Z/);
  });
  it('says that commits that need it wait when it is listed but its walsender is not streaming', () => {
    const s = mirrorStatus(
      facts({ configured: sync, slot: { syncState: null, active: false, activePid: null }, standbyNames: listed }),
    );
    expect(s.name).toBe('Degraded');
    expect(s.reason).toMatch(
      /not answering: no walsender streams for it.*still lists it: source commits that need it wait/,
    );
  });
  it('has no sync report for an async mirror, nor when the source was not read', () => {
    expect(mirrorReport(facts({ slot: { syncState: 'async' } })).sync).toBeNull();
    expect(mirrorReport(facts({ configured: sync, sourceDown: true })).sync).toBeNull();
  });
});
