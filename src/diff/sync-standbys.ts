/**
 * `synchronous_standby_names` for sync mirrors (issue 10; docs/sync.md): what mirrors would write, and whether the
 * setting is its to write. Pure.
 *
 * A walsender, logical or physical, is a candidate synchronous standby when its application_name matches an entry
 * (case-insensitively; quoted names are exact). A sync mirror's replication connection is named
 * `mirrors_<mirror>` (identifier-safe: mirror names are lower-case words of at most 50 characters, so the name
 * fits NAMEDATALEN); snapshot and temporary-slot connections never use that name, so a table copy never becomes
 * the standby Postgres waits for.
 *
 * The managed value is `ANY k (...)` over the source's sync mirrors that are Following: a quorum, so that one
 * slow or dead mirror among several does not stop every commit (the outage a single named standby causes).
 *
 * Ownership: the setting is cluster-wide and other tools manage it too (Patroni, pg_auto_failover, CloudNativePG
 * write it; a `*` they write makes every walsender, async mirrors included, a candidate). mirrors writes it only
 * when it is empty (nobody's), or when it holds exactly the value mirrors last wrote there through ALTER SYSTEM
 * (recorded in the destination catalog with the source's system identifier). Anything else is someone else's:
 * refused with the owner named, nothing changed.
 */
import { quoteIdent } from '../db/quote.js';
import type { CommitScopeFacts, StandbyNamesFacts } from '../inspect/types.js';

export type { StandbyNamesFacts };

/** The application_name of a sync mirror's replication connection. */
export function standbyName(mirror: string): string {
  return `mirrors_${mirror}`;
}

/**
 * The value for these sync mirrors of one source cluster (those Following: a mirror being copied or resynced
 * cannot answer, and would stop every commit). '' when there is none: no commit waits for a mirror.
 */
export function standbyNamesValue(mirrors: string[], quorum: number): string {
  if (!Number.isSafeInteger(quorum) || quorum < 1)
    throw new Error(`sync quorum must be a whole number >= 1, got ${quorum}`);
  if (mirrors.length === 0) return '';
  const names = [...new Set(mirrors)].sort().map((m) => quoteIdent(standbyName(m)));
  return `ANY ${Math.min(quorum, names.length)} (${names.join(', ')})`;
}

export type Ownership =
  | { ours: true }
  | {
      ours: false;
      /** Who holds it, for the diagnostic: "postgresql.conf:123", "the server's command line", ... */
      owner: string;
      why: string;
      hint: string;
    };

const AUTO_CONF = 'postgresql.auto.conf';

/**
 * Whether mirrors may write the setting. `lastWritten`: the value mirrors recorded when it last wrote it for this
 * source (same system identifier), or null.
 */
export function standbyNamesOwnership(f: StandbyNamesFacts, lastWritten: string | null): Ownership {
  const where =
    f.sourcefile !== null
      ? `${f.sourcefile}${f.sourceline !== null ? `:${f.sourceline}` : ''}`
      : describeSource(f.source);
  if (/(^|[\s,(])\*([\s,)]|$)/.test(f.setting))
    return {
      ours: false,
      owner: where,
      why: `synchronous_standby_names is ${quoteValue(f.setting)} (set in ${where}): \`*\` makes every walsender a synchronous standby candidate, async mirrors included, and a logical walsender answers only for its own database`,
      hint: 'whoever set it (an HA manager such as Patroni or pg_auto_failover?) manages synchronous replication on this cluster: leave the mirror async, or list its standby name there yourself',
    };
  // A change waiting for a reload, or a file entry that an ALTER SYSTEM would silently override.
  const elsewhere = (f.fileSettings ?? []).filter((s) => !s.sourcefile.endsWith(AUTO_CONF) && s.setting !== '');
  if (elsewhere.length) {
    const at = `${elsewhere[0].sourcefile}:${elsewhere[0].sourceline}`;
    return {
      ours: false,
      owner: at,
      why: `synchronous_standby_names is set in ${at} (${quoteValue(elsewhere[0].setting)}${elsewhere[0].applied ? '' : ', not applied yet'}): that file manages it`,
      hint: `remove it there (and reload) to let mirrors manage it, or keep the mirror async`,
    };
  }
  const empty = f.setting.trim() === '';
  const fromAutoConf = f.sourcefile?.endsWith(AUTO_CONF) ?? false;
  const mine = lastWritten !== null && f.setting === lastWritten && (fromAutoConf || f.sourcefile === null);
  if (!empty && !mine)
    return {
      ours: false,
      owner: where,
      why: `synchronous_standby_names is ${quoteValue(f.setting)} (set in ${where}), not a value mirrors wrote`,
      hint:
        lastWritten === null
          ? 'another tool or a person manages synchronous replication on this cluster: leave the mirror async, or empty the setting (ALTER SYSTEM RESET synchronous_standby_names) if nobody needs it'
          : `mirrors last wrote ${quoteValue(lastWritten)}; someone changed it since: find out who, then empty it to give it back to mirrors`,
    };
  if (f.source !== 'default' && !fromAutoConf && f.source !== 'configuration file')
    return {
      ours: false,
      owner: describeSource(f.source),
      why: `synchronous_standby_names comes from ${describeSource(f.source)}, which ALTER SYSTEM cannot override`,
      hint: 'remove it there, or keep the mirror async',
    };
  if (f.allowAlterSystem === false)
    return {
      ours: false,
      owner: 'allow_alter_system = off',
      why: 'ALTER SYSTEM is disabled on this server (allow_alter_system = off): the configuration is managed outside the server',
      hint: `add the value to the managed configuration yourself, or keep the mirror async`,
    };
  if (!f.mayAlterSystem)
    return {
      ours: false,
      owner: 'privileges',
      why: 'the role may not run ALTER SYSTEM SET synchronous_standby_names',
      hint: 'GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names TO <role>; (PostgreSQL 15+), or connect as a superuser',
    };
  return { ours: true };
}

function describeSource(source: string): string {
  switch (source) {
    case 'command line':
      return "the server's command line (-c or postmaster options)";
    case 'environment variable':
      return 'an environment variable of the server';
    case 'default':
      return 'the built-in default';
    default:
      return `pg_settings source "${source}"`;
  }
}

function quoteValue(v: string): string {
  return `'${v.replaceAll("'", "''")}'`;
}

/** What decides whether a sync mirror can answer now (its catalog record on its destination). */
export interface SyncMember {
  mirror: string;
  /** The source cluster (pg_control_system().system_identifier): synchronous_standby_names is cluster-wide. */
  sourceSystem: string;
  /** Recorded on its destination: status, phase, paused, promoted. Absent: not created yet. */
  recorded?: { status: string; phase: string; paused: boolean; promoted: boolean };
  quorum: number;
  /** This plan replaces its slot, resyncs it or promotes it: it leaves the list first. */
  leaving: boolean;
  /**
   * Named in the value in effect now. A listed mirror stays while it is down (on_sync_loss: block, Postgres's own
   * semantics: commits wait for it); it joins only once Following.
   */
  listed: boolean;
  /** The degrade policy took it out of the value at this instant (ISO; mirrors.sync_standbys.degraded), or null. */
  degradedSince?: string | null;
}

export interface SyncGroup {
  sourceSystem: string;
  /** The mirrors in the value: Following (or Degraded: streaming, just late), not leaving. */
  members: string[];
  /** Sync mirrors left out for now, with why (a note in the plan: they join once Following). */
  waiting: { mirror: string; why: string }[];
  quorum: number;
  value: string;
  /** Mirrors of one cluster asking for different quorums: the plan refuses. */
  quorumConflict: number[] | null;
}

/** The managed value per source cluster. */
export function syncGroups(members: SyncMember[]): SyncGroup[] {
  const bySystem = new Map<string, SyncMember[]>();
  for (const m of members) bySystem.set(m.sourceSystem, [...(bySystem.get(m.sourceSystem) ?? []), m]);
  return [...bySystem.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([sourceSystem, ms]) => {
      const quorums = [...new Set(ms.map((m) => m.quorum))].sort((a, b) => a - b);
      const waiting: SyncGroup['waiting'] = [];
      const inList: string[] = [];
      for (const m of ms) {
        const why = notAnswering(m);
        if (why) waiting.push({ mirror: m.mirror, why });
        else inList.push(m.mirror);
      }
      const quorum = quorums[0];
      return {
        sourceSystem,
        members: inList.sort(),
        waiting: waiting.sort((a, b) => (a.mirror < b.mirror ? -1 : 1)),
        quorum,
        value: standbyNamesValue(inList, quorum),
        quorumConflict: quorums.length > 1 ? quorums : null,
      };
    });
}

function notAnswering(m: SyncMember): string | null {
  const r = m.recorded;
  if (!r) return 'not created yet: it joins once it is Following';
  if (r.promoted) return 'promoted';
  if (m.leaving) return 'this plan replaces its slot, resyncs or promotes it: it leaves the list first';
  if (r.paused) return 'paused';
  if (r.phase !== 'ready') return `being copied (phase ${r.phase}): it joins once it is Following`;
  // Down but listed: it stays, and commits wait for it (the degrade policy, not the plan, may drop it).
  if (m.listed) return null;
  const degraded = m.degradedSince
    ? `degraded at ${m.degradedSince} (on_sync_loss: commits waited for it too long), `
    : '';
  if (r.status !== 'Following' && r.status !== 'Degraded')
    return `${degraded}${r.status}: it joins once it is Following`;
  return null;
}

/**
 * The standby names a synchronous_standby_names value lists (`ANY 2 (a, "b")`, `FIRST 1 (a)`, `a, b`), as
 * Postgres compares them: unquoted names folded to lower case, quoted ones exact.
 */
export function listedNames(value: string): Set<string> {
  const inner = value.trim().match(/^(?:(?:ANY|FIRST)\s+\d+\s*)?\(?(.*?)\)?$/is)?.[1] ?? '';
  const out = new Set<string>();
  for (const m of inner.matchAll(/"((?:[^"]|"")*)"|([^\s,"]+)/g)) {
    if (m[1] !== undefined) out.add(m[1].replaceAll('""', '"'));
    else if (m[2]) out.add(m[2].toLowerCase());
  }
  return out;
}

/** How many of the listed standbys a commit waits for: k of `ANY k (...)` / `FIRST k (...)`, 1 for a plain list. */
export function standbyNamesQuorum(value: string): number {
  // `2 (a, b)` is the pre-9.6 spelling of FIRST 2.
  const k = value.trim().match(/^(?:(?:ANY|FIRST)\s+)?(\d+)\s*\(/i)?.[1] ?? null;
  return k === null ? 1 : Number(k);
}

/**
 * Why every commit the source acknowledged is on this sync mirror's destination, as of the worker's last reading
 * (the DR loss window is then zero), or null when that cannot be said: the mirror must block (on_sync_loss:
 * block: never dropped to let commits through), be counted synchronous (sync_state sync, or quorum with a quorum
 * of every listed standby), and the value then must still be the one recorded, with no degradation since.
 */
export function syncGuarantee(
  mirror: string,
  onSyncLoss: 'block' | { degrade_after_ms: number },
  sync: { state: string | null; standby_names: string; since: string } | undefined,
  at: string,
  record: { value: string; degraded: Record<string, string> } | undefined,
): string | null {
  if (onSyncLoss !== 'block' || !sync) return null;
  const listed = listedNames(sync.standby_names);
  if (!listed.has(standbyName(mirror)) || record?.degraded[mirror]) return null;
  if (record && record.value !== sync.standby_names) return null;
  const everyOne =
    sync.state === 'sync' || (sync.state === 'quorum' && standbyNamesQuorum(sync.standby_names) >= listed.size);
  if (!everyOne) return null;
  return `every commit the source acknowledged waited for this mirror (sync_state ${sync.state} since ${sync.since}, synchronous_standby_names = '${sync.standby_names}', on_sync_loss: block) as of its last reading at ${at}`;
}

/** synchronous_commit values under which a commit waits for synchronous standbys (on and its spellings). */
export function commitWaits(value: string): boolean {
  return ['on', 'true', 'yes', '1', 'remote_write', 'remote_apply'].includes(value.trim().toLowerCase());
}

export interface CommitScope {
  /** The cluster's synchronous_commit; null when this session sees a database or role setting instead. */
  cluster: string | null;
  /** Databases whose commits wait for the synchronous standbys (roles aside). */
  waiting: string[];
  /** Mirrored databases whose commits do not wait: sync mode gives them no RPO 0. */
  mirroredNotWaiting: string[];
  /** Other databases whose commits wait although no sync mirror carries them. */
  othersWaiting: string[];
  /** Role settings that win over the database's: whose commits wait, or do not, whatever the database says. */
  roles: { role: string; database: string | null; setting: string; waits: boolean }[];
}

/** Which databases' commits wait for the cluster's synchronous standbys (the mirrored ones should, others not). */
export function commitScope(f: CommitScopeFacts, mirrored: string[]): CommitScope {
  const cluster = ['database', 'user', 'database user'].includes(f.source) ? null : f.setting;
  // Unknown cluster value: Postgres's default (on) is the careful guess for "does it wait".
  const waits = (d: { setting: string | null }) => commitWaits(d.setting ?? cluster ?? 'on');
  const waiting = f.databases.filter(waits).map((d) => d.name);
  return {
    cluster,
    waiting,
    mirroredNotWaiting: mirrored.filter((d) => !waiting.includes(d)).sort(),
    othersWaiting: waiting.filter((d) => !mirrored.includes(d)),
    roles: f.roles.map((r) => ({ ...r, waits: commitWaits(r.setting) })),
  };
}
