/**
 * The degrade policy of sync mirrors (`on_sync_loss: {degrade_after}`; issue 10): in every `mirrors run` that
 * has such mirrors, one guardian per source cluster (the first to take an advisory lock on the source acts; the
 * others stand by) watches synchronous replication once a second:
 *   - when commits have been waiting for synchronous replication for `degrade_after`, the listed mirrors with that
 *     policy that do not confirm (no walsender, or a flush position that has not moved for that long) leave
 *     synchronous_standby_names, so commits continue;
 *   - a mirror it dropped joins again once its walsender streams and has caught up with the source.
 * It writes only a value mirrors wrote (the destination catalog's record), records every change there, and says
 * so in the log. Pure decision (decide), I/O around it (SyncGuardian).
 */
import type pg from 'pg';
import type { Config, Mirror } from '../config/types.js';
import { connectPeer } from '../db/connect.js';
import { lsnToBigInt } from '../db/lsn.js';
import { quoteLiteral } from '../db/quote.js';
import { listedNames, standbyName, standbyNamesValue } from '../diff/sync-standbys.js';

const TICK_MS = 1_000;
/** Advisory lock class of the guardian on a source (one per cluster acts). */
const GUARD_LOCK = 0x6d697267; // 'mirg'

export interface SyncReading {
  value: string;
  currentLsn: string;
  /** Age of the oldest commit waiting for synchronous replication (pg_stat_activity wait_event SyncRep), or null. */
  oldestWaitMs: number | null;
  walsenders: { name: string; state: string; flushLsn: string | null; syncState?: string }[];
}

export interface GuardState {
  /** Per mirror: its last flush position and when it last moved. */
  progress: Map<string, { flush: bigint; movedAt: number }>;
  /** Mirrors the degrade policy dropped, with since when (ISO; recorded): it re-adds only these. */
  dropped: Map<string, string>;
  /** The source's WAL position at the previous tick (a re-added mirror must have caught up to it). */
  previousLsn: bigint | null;
}

/** The value to write now, or null for no change. */
export function decide(
  mirrors: { name: string; degradeAfterMs: number | null; quorum: number }[],
  r: SyncReading,
  s: GuardState,
  now: number,
): { value: string; dropped: string[]; added: string[] } | null {
  const listed = listedNames(r.value);
  const sender = new Map(r.walsenders.map((w) => [w.name, w]));
  for (const m of mirrors) {
    const w = sender.get(standbyName(m.name));
    const flush = w?.flushLsn ? lsnToBigInt(w.flushLsn) : null;
    const p = s.progress.get(m.name);
    // Moved (or first seen): now; gone or still: it keeps the instant it last moved.
    if (!p || (flush !== null && flush > p.flush))
      s.progress.set(m.name, { flush: flush ?? p?.flush ?? 0n, movedAt: now });
  }
  const drop = mirrors.filter((m) => {
    if (m.degradeAfterMs === null || !listed.has(standbyName(m.name))) return false;
    if (r.oldestWaitMs === null || r.oldestWaitMs < m.degradeAfterMs) return false;
    const w = sender.get(standbyName(m.name));
    const stalled = now - (s.progress.get(m.name)?.movedAt ?? now) >= m.degradeAfterMs;
    return w?.state !== 'streaming' || stalled;
  });
  const add = mirrors.filter((m) => {
    if (!s.dropped.has(m.name) || listed.has(standbyName(m.name))) return false;
    const w = sender.get(standbyName(m.name));
    return (
      w?.state === 'streaming' &&
      w.flushLsn !== null &&
      s.previousLsn !== null &&
      lsnToBigInt(w.flushLsn) >= s.previousLsn
    );
  });
  s.previousLsn = lsnToBigInt(r.currentLsn);
  if (!drop.length && !add.length) return null;
  const members = mirrors
    .filter((m) => (listed.has(standbyName(m.name)) && !drop.includes(m)) || add.includes(m))
    .map((m) => m.name);
  return {
    value: standbyNamesValue(members, mirrors[0].quorum),
    dropped: drop.map((m) => m.name),
    added: add.map((m) => m.name),
  };
}

const READING_SQL = `
SELECT current_setting('synchronous_standby_names') AS value, pg_current_wal_lsn()::text AS current_lsn,
       (SELECT (extract(epoch FROM clock_timestamp() - min(state_change)) * 1000)::bigint
          FROM pg_stat_activity WHERE wait_event = 'SyncRep') AS oldest_wait_ms,
       (SELECT coalesce(json_agg(json_build_object('name', application_name, 'state', state, 'flushLsn', flush_lsn::text, 'syncState', sync_state)), '[]')
          FROM pg_stat_replication) AS walsenders,
       (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier`;

export interface GuardianEvents {
  log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
  /** A sync mirror's degradation as recorded (at start, and with every change). */
  degraded: (mirror: string, degraded: boolean) => void;
  /** pg_stat_replication.sync_state of a guarded mirror's walsender (null: none), every tick. */
  syncState: (mirror: string, state: string | null) => void;
}

export class SyncGuardian {
  private db: pg.Client | null = null;
  private holds = false;
  private readonly state: GuardState = { progress: new Map(), dropped: new Map(), previousLsn: null };
  private warned = '';
  /** The value mirrors last wrote for this cluster (the destinations' record); undefined: not read yet. */
  private recordedValue: string | null | undefined = undefined;
  /** Destinations whose record lags the guardian's last change. */
  private readonly unrecorded = new Set<string>();

  constructor(
    private readonly config: Config,
    private readonly source: string,
    private readonly mirrors: Mirror[],
    private readonly events: GuardianEvents,
  ) {}

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.tick().catch((err) =>
        this.warnOnce(`sync guardian for peer ${this.source}: ${(err as Error).message}`),
      );
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
    await this.db?.end().catch(() => {});
  }

  private async tick() {
    if (!this.db) {
      this.db = await connectPeer(this.config.peers[this.source], {
        applicationName: `mirrors run (sync guardian ${this.source})`,
        options: '-c synchronous_commit=local -c statement_timeout=5000',
      });
      this.db.on('error', () => {
        this.db = null;
        this.holds = false;
      });
    }
    const db = this.db;
    const row = (await db.query(READING_SQL)).rows[0];
    // Every instance that guards the source says whether it waits for each mirror: the mirror's own worker, which
    // says it too, may be the one that is down.
    for (const m of this.mirrors) {
      const w = (row.walsenders as SyncReading['walsenders']).find((x) => x.name === standbyName(m.name));
      this.events.syncState(m.name, w?.syncState ?? null);
    }
    if (!this.holds) {
      this.holds = (
        await db.query('SELECT pg_try_advisory_lock($1::int, hashtext($2::text)) AS ok', [
          GUARD_LOCK,
          row.system_identifier,
        ])
      ).rows[0].ok;
      if (!this.holds) return; // another instance guards this cluster
    }
    const reading: SyncReading = {
      value: row.value,
      currentLsn: row.current_lsn,
      oldestWaitMs: row.oldest_wait_ms === null ? null : Number(row.oldest_wait_ms),
      walsenders: row.walsenders,
    };
    const policies = this.mirrors.map((m) => ({
      name: m.name,
      degradeAfterMs: m.on_sync_loss === 'block' ? null : m.on_sync_loss.degrade_after_ms,
      quorum: m.sync_quorum,
    }));
    const destinations = [...new Set(this.mirrors.map((m) => m.destination))];
    // The record is on the destinations, which may be the very peers that cannot be reached: keep the last value
    // read, and write records that failed again until they land.
    await this.syncRecords(destinations, row.system_identifier, reading.value);
    const change = decide(policies, reading, this.state, Date.now());
    if (!change) return;
    // Only a value mirrors wrote.
    if (this.recordedValue !== reading.value) {
      this.warnOnce(
        `sync guardian for peer ${this.source}: synchronous_standby_names is ${quoteLiteral(reading.value)}, not the value mirrors wrote: not degrading`,
      );
      return;
    }
    await db.query(
      change.value
        ? `ALTER SYSTEM SET synchronous_standby_names = ${quoteLiteral(change.value)}`
        : 'ALTER SYSTEM RESET synchronous_standby_names',
    );
    await db.query('SELECT pg_reload_conf()');
    const at = new Date().toISOString();
    for (const m of change.dropped) this.state.dropped.set(m, at);
    for (const m of change.added) this.state.dropped.delete(m);
    this.recordedValue = change.value;
    for (const d of destinations) this.unrecorded.add(d);
    await this.syncRecords(destinations, row.system_identifier, change.value);
    for (const m of change.dropped) {
      this.events.degraded(m, true);
      this.events.log(
        'warn',
        `mirror ${m}: degraded: source commits waited ${reading.oldestWaitMs} ms for it (on_sync_loss: degrade_after); they no longer wait for it`,
        { event: 'sync_degraded', mirror: m, waited_ms: reading.oldestWaitMs, synchronous_standby_names: change.value },
      );
    }
    for (const m of change.added) {
      this.events.degraded(m, false);
      this.events.log('info', `mirror ${m}: synchronous again: source commits wait for it`, {
        event: 'sync_restored',
        mirror: m,
        synchronous_standby_names: change.value,
      });
    }
  }

  /**
   * Reads the recorded value while none is known, writes the guardian's own changes to every destination that
   * has not got them yet. A destination that does not answer within a few seconds is tried again next tick.
   */
  private async syncRecords(destinations: string[], sysid: string, current: string) {
    for (const peer of destinations) {
      const writing = this.unrecorded.has(peer);
      // Read again whenever the value in effect is not the one known recorded (an apply may have just written it).
      if (!writing && this.recordedValue === current) continue;
      try {
        await withPeer(this.config, peer, async (c) => {
          if (writing) {
            await c.query(
              `INSERT INTO mirrors.sync_standbys (source_system_identifier, value, degraded) VALUES ($1::text, $2::text, $3::jsonb)
               ON CONFLICT (source_system_identifier)
               DO UPDATE SET value = excluded.value, degraded = excluded.degraded, written_at = now()`,
              [sysid, this.recordedValue ?? '', JSON.stringify(Object.fromEntries(this.state.dropped))],
            );
            this.unrecorded.delete(peer);
          } else {
            const r = await c.query(
              'SELECT value, degraded FROM mirrors.sync_standbys WHERE source_system_identifier = $1::text',
              [sysid],
            );
            this.recordedValue = r.rows[0]?.value ?? null;
            // The record is the truth (a restarted guardian, an apply that added a mirror back).
            this.state.dropped = new Map(Object.entries(r.rows[0]?.degraded ?? {}));
            for (const m of this.mirrors) this.events.degraded(m.name, this.state.dropped.has(m.name));
          }
        });
      } catch {
        // Unreachable now: the cached value stands; pending records wait.
      }
    }
  }

  private warnOnce(msg: string) {
    if (msg === this.warned) return;
    this.warned = msg;
    this.events.log('warn', msg);
  }
}

async function withPeer(config: Config, peer: string, fn: (c: pg.Client) => Promise<void>) {
  const c = await connectPeer(config.peers[peer], {
    applicationName: 'mirrors run (sync guardian)',
    connectTimeoutMs: 3_000,
    options: '-c statement_timeout=3000',
  });
  try {
    await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}
