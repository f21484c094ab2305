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
  type MirrorFacts,
  type PeerError,
  type SlotFacts,
} from '../../src/status/model.js';

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
    promotedAt: null,
    lagMs: 40,
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
    lagBytes: '0',
    currentLsn: '16/B374D848',
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
    slot?: Partial<SlotFacts> | null;
    destinationDown?: boolean;
    sourceDown?: boolean;
    sourceNotRead?: boolean;
    configured?: Partial<MirrorFacts['configured']>;
    name?: string;
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
          },
        },
    source: over.sourceNotRead
      ? null
      : over.sourceDown
        ? { ok: false, error: err('source', 'prod') }
        : { ok: true, value: { slot: over.slot === null ? null : slot(over.slot) } },
  };
}

describe('mirrorStatus', () => {
  it('is Following when a worker holds the lease, its heartbeat is fresh and the lag is under the threshold', () => {
    expect(mirrorStatus(facts())).toEqual({ name: 'Following', reason: 'streaming, lag 40 ms' });
    expect(mirrorStatus(facts({ mirror: { lagMs: null } }))).toEqual({ name: 'Following', reason: 'streaming' });
  });

  it('is NotCreated when the catalog has no row for the mirror', () => {
    const s = mirrorStatus(facts({ mirror: null, sourceNotRead: true }));
    expect(s.name).toBe('NotCreated');
    expect(s.reason).toContain('run mirrors apply');
  });

  it('is Promoted when promoted_at is set, whatever else is true (the source may be gone for good)', () => {
    expect(
      mirrorStatus(
        facts({
          mirror: { promotedAt: '2026-02-02T00:00:00.000Z', lastError: { message: 'x' } },
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

  it('is Paused when the config or the catalog says so, before anything about the worker', () => {
    expect(mirrorStatus(facts({ configured: { paused: true }, leaseHeld: false })).name).toBe('Paused');
    const s = mirrorStatus(facts({ mirror: { paused: true }, sourceDown: true }));
    expect(s.name).toBe('Paused');
    expect(s.reason).toContain('paused in the catalog');
  });

  it('is Bootstrapping with its progress while the snapshot phase is not ready', () => {
    expect(
      mirrorStatus(
        facts({ mirror: { phase: 'snapshot', bytesDone: '100', bytesTotal: '9007199254740993' }, leaseHeld: false }),
      ),
    ).toMatchObject({
      name: 'Bootstrapping',
      bytes_done: '100',
      bytes_total: '9007199254740993',
    });
    expect(mirrorStatus(facts({ mirror: { phase: 'created' }, slot: null })).name).toBe('Bootstrapping');
  });

  it('is Failed when last_error is set and no worker holds the lease; a worker retrying keeps it out of Failed', () => {
    const failed = mirrorStatus(
      facts({
        mirror: { lastError: { code: '23505', message: 'duplicate key value violates unique constraint "t_pkey"' } },
        leaseHeld: false,
      }),
    );
    expect(failed).toEqual({
      name: 'Failed',
      reason: 'the worker stopped: duplicate key value violates unique constraint "t_pkey" (23505)',
      error: 'duplicate key value violates unique constraint "t_pkey" (23505)',
    });
    expect(mirrorStatus(facts({ mirror: { lastError: 'plain text' }, leaseHeld: false }))).toMatchObject({
      error: 'plain text',
    });
    expect(mirrorStatus(facts({ mirror: { lastError: { code: 'X' } }, leaseHeld: false }))).toMatchObject({
      error: '{"code":"X"}',
    });
    expect(mirrorStatus(facts({ mirror: { lastError: { message: 'boom' } }, leaseHeld: true })).name).toBe('Following');
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
    expect(
      mirrorStatus(
        facts({ mirror: { worker: { ...catalogMirror().worker, heartbeatAgeMs: HEARTBEAT_STALE_MS + 1 } } }),
      ),
    ).toEqual({
      name: 'Disconnected',
      reason: "the worker's last heartbeat is 15s old",
    });
    expect(
      mirrorStatus(facts({ mirror: { worker: { ...catalogMirror().worker, heartbeatAgeMs: HEARTBEAT_STALE_MS } } })),
    ).toMatchObject({ name: 'Degraded', lag_ms: 10_040 });
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
    expect(mirrorStatus(facts({ mirror: { lagMs: 5001 } }))).toEqual({
      name: 'Degraded',
      reason: 'lag 5001 ms is over the threshold of 5000 ms',
      lag_ms: 5001,
      lag_threshold_ms: 5000,
    });
    expect(mirrorStatus(facts({ mirror: { lagMs: 5000 } })).name).toBe('Following');
    expect(mirrorStatus(facts({ mirror: { lagMs: 300 }, configured: { lagThresholdMs: 200 } })).name).toBe('Degraded');
    expect(
      mirrorStatus(
        facts({
          mirror: { lagMs: 300, settings: { lag_threshold_ms: 250 } },
          configured: { lagThresholdMs: undefined },
        }),
      ).name,
    ).toBe('Degraded');
    expect(
      mirrorStatus(
        facts({ mirror: { lagMs: 300, settings: {} }, configured: { lagThresholdMs: undefined, mode: 'sync' } }),
      ).name,
    ).toBe('Degraded');
    expect(
      mirrorStatus(
        facts({ mirror: { lagMs: 300, settings: {} }, configured: { lagThresholdMs: undefined, mode: 'async' } }),
      ).name,
    ).toBe('Following');
  });

  it('counts heartbeat silence past 5 s as lag, like mirrors.lag()', () => {
    const s = mirrorStatus(
      facts({ mirror: { lagMs: 0, worker: { ...catalogMirror().worker, heartbeatAgeMs: 12_000 } } }),
    );
    expect(s).toMatchObject({ name: 'Degraded', lag_ms: 7000 });
  });
});

describe('mirrorReport', () => {
  it('carries the position, lag, worker, slot and tables, 64-bit values as exact strings', () => {
    const r = mirrorReport(
      facts({
        tables: [tableFacts('users'), tableFacts('orders', { rowsInserted: '1', rowsUpdated: '0', rowsDeleted: '0' })],
        slot: { lagBytes: '18446744073709551615' },
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
    expect(r.slot).toMatchObject({
      name: 'mirrors_m',
      exists: true,
      active: true,
      wal_status: 'reserved',
      retained_bytes: '7657544',
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
    });
    expect(r.errors).toEqual([]);
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
        facts({ name: 'n', mirror: { lagMs: 90_000 } }),
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
          facts({ name: 'b', mirror: { lagMs: 9000 } }),
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
