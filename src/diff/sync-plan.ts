/**
 * Plans synchronous_standby_names for the source clusters of sync mirrors (diff/sync-standbys.ts says what the
 * value is and whether it is ours to write). Pure: reads the inspection, adds actions and diagnostics.
 *
 * Order: a mirror leaves the list before anything that stops it answering (its slot replaced or dropped, a
 * resync, a promotion): those actions depend on the update. A mirror joins only once it is Following, so a new
 * sync mirror is added by a later plan (a note says so).
 */
import type { Config, Mirror } from '../config/types.js';
import type { Live } from '../inspect/types.js';
import { diag } from '../plan/diagnostics.js';
import * as addr from '../plan/address.js';
import type { Diagnostic } from '../plan/types.js';
import type { ActionSet } from './actions.js';
import { quoteIdent, quoteLiteral } from '../db/quote.js';
import {
  type CommitScope,
  commitScope,
  listedNames,
  standbyName,
  standbyNamesOwnership,
  syncGroups,
  type SyncMember,
} from './sync-standbys.js';

export function planSyncStandbys(
  config: Config,
  live: Live,
  selected: string[] | null,
  actions: ActionSet,
  diagnostics: Diagnostic[],
): void {
  const sync = Object.values(config.mirrors).filter((m) => m.mode === 'sync');
  if (!sync.length) return;
  // A value lists every sync mirror of the cluster: a plan that does not cover them all leaves it alone.
  if (selected && sync.some((m) => !selected.includes(m.name))) return;
  const members: (SyncMember & { m: Mirror })[] = [];
  const listed = (peer: string) => listedNames(live.peers[peer]?.standbyNames?.setting ?? '');
  const record = (m: Mirror, system: string) => live.peers[m.destination]?.catalog.syncStandbys?.[system];
  for (const m of sync) {
    const src = live.peers[m.source];
    const dst = live.peers[m.destination];
    if (!src?.systemIdentifier || !dst) continue;
    const r = dst.catalog.mirrors[m.name];
    const mine = (a: { mirror: string | null; kind: string; op: string }) => a.mirror === m.name;
    const leaving = actions.list.some(
      (a) =>
        mine(a) &&
        ((a.kind === 'slot' && a.op !== 'create') ||
          (a.kind === 'snapshot' && a.details.kind !== 'initial') ||
          a.kind === 'promotion' ||
          (a.kind === 'mirror' && a.op === 'delete')),
    );
    members.push({
      m,
      mirror: m.name,
      sourceSystem: src.systemIdentifier,
      recorded: r && {
        status: r.status,
        phase: r.phase,
        paused: r.paused || m.paused,
        promoted: !!r.promotedAt,
      },
      quorum: m.sync_quorum,
      leaving,
      listed: listed(m.source).has(standbyName(m.name)),
      degradedSince: record(m, src.systemIdentifier)?.degraded[m.name] ?? null,
    });
  }
  for (const g of syncGroups(members)) {
    const inGroup = members.filter((x) => x.sourceSystem === g.sourceSystem);
    const source = inGroup[0].m.source;
    const src = live.peers[source];
    const at = addr.syncStandbysAddress(source);
    if (g.quorumConflict) {
      diagnostics.push(
        diag(
          'MR190',
          at,
          `the sync mirrors of peer ${source}'s cluster ask for different sync_quorum values (${g.quorumConflict.join(', ')}): synchronous_standby_names is one setting for the whole cluster`,
          'set one sync_quorum for all of them (under `defaults:`, for instance)',
        ),
      );
      continue;
    }
    const member = (name: string) => inGroup.find((x) => x.mirror === name)!;
    for (const w of g.waiting) {
      // A promoted mirror is no one's standby any more: nothing to say.
      if (member(w.mirror).recorded?.promoted) continue;
      diagnostics.push(
        diag(
          'MR191',
          addr.mirrorAddress(w.mirror),
          `sync mirror ${w.mirror} is not a synchronous standby now: ${w.why}`,
          member(w.mirror).leaving
            ? 'it leaves synchronous_standby_names before that action; it joins again once it is Following (a later plan)'
            : 'source commits do not wait for it meanwhile; plan again once `mirrors status` says Following',
        ),
      );
    }
    const facts = src.standbyNames;
    const mirrored = [...new Set(inGroup.map((x) => live.peers[x.m.source]?.database).filter((d) => d !== undefined))];
    const scope = facts && g.value ? commitScope(facts.commitScope, mirrored) : null;
    if (scope) diagnostics.push(...scopeDiagnostics(source, at, scope, mirrored));
    if (!facts || facts.setting === g.value) continue;
    const recordOn = [...new Set(inGroup.map((x) => x.m.destination))].sort();
    const lastWritten =
      recordOn.map((p) => live.peers[p]?.catalog.syncStandbys?.[g.sourceSystem]?.value).find((v) => v !== undefined) ??
      null;
    const owner = standbyNamesOwnership(facts, lastWritten);
    if (!owner.ours) {
      diagnostics.push(diag('MR192', at, owner.why, owner.hint));
      continue;
    }
    const k = Math.min(g.quorum, g.members.length);
    const leaving = inGroup
      .filter((x) => x.leaving && x.listed)
      .map((x) => x.mirror)
      .sort();
    const update = actions.add({
      kind: 'sync_standbys',
      op: 'update',
      address: at,
      peer: source,
      mirror: null,
      reason: g.value
        ? `commits of database${scope!.waiting.length === 1 ? '' : 's'} ${scope!.waiting.join(', ') || '(none)'} on peer ${source}'s cluster wait for ${k} of ${g.members.join(', ')} (synchronous_standby_names)${k < g.quorum ? `: sync_quorum is ${g.quorum}, but only ${g.members.length} can answer now` : ''}`
        : leaving.length
          ? `${leaving.join(', ')} ${leaving.length === 1 ? 'leaves' : 'leave'} synchronous_standby_names first (a promotion, resync or slot change follows): source commits wait for none`
          : 'no sync mirror can answer now: source commits wait for none (synchronous_standby_names emptied)',
      reason_code: 'setting_changed',
      risk: 'disruptive',
      before: {
        value: facts.setting,
        members: inGroup
          .filter((x) => x.listed)
          .map((x) => x.mirror)
          .sort(),
      },
      after: { value: g.value, members: g.members },
      depends_on: [],
      details: {
        source_system_identifier: g.sourceSystem,
        value: g.value,
        sql: [
          g.value
            ? `ALTER SYSTEM SET synchronous_standby_names = ${quoteLiteral(g.value)}`
            : 'ALTER SYSTEM RESET synchronous_standby_names',
          'SELECT pg_reload_conf()',
        ],
        record_on: recordOn,
        waiting_databases: scope?.waiting ?? [],
        role_overrides: scope?.roles ?? [],
      },
    });
    // Leaving first; the record needs each destination's catalog at migration 8.
    for (const x of inGroup) {
      for (const a of actions.list) {
        if (a.mirror !== x.mirror) continue;
        if (x.leaving && a.id !== update.id) actions.dependOn(a.id, update.id);
      }
    }
    for (const p of recordOn) {
      const catalog = actions.list.find((a) => a.kind === 'catalog' && a.peer === p);
      if (catalog) actions.dependOn(update.id, catalog.id);
    }
  }
}

/**
 * synchronous_standby_names is cluster-wide; synchronous_commit decides, database by database (and role by role),
 * which commits wait. Said in the plan: mirrored databases that would not wait (sync gives them nothing), and other
 * databases that would wait for mirrors that do not carry them.
 */
function scopeDiagnostics(source: string, at: string, scope: CommitScope, mirrored: string[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const roles = scope.roles.filter((r) => r.database === null || mirrored.includes(r.database) || r.waits);
  const roleText = roles.length
    ? `; role settings win over it: ${roles.map((r) => `${r.role}${r.database ? ` in ${r.database}` : ''} (synchronous_commit = ${r.setting}: ${r.waits ? 'waits' : 'does not wait'})`).join(', ')}`
    : '';
  if (scope.mirroredNotWaiting.length)
    out.push(
      diag(
        'MR194',
        at,
        `commits of the mirrored database${scope.mirroredNotWaiting.length === 1 ? '' : 's'} ${scope.mirroredNotWaiting.join(', ')} on peer ${source} do not wait for synchronous standbys (synchronous_commit is local or off there${scope.cluster === null ? '' : `; the cluster's value is ${scope.cluster}`}): mode sync gives them no more than async${roleText}`,
        `ALTER DATABASE ${quoteIdent(scope.mirroredNotWaiting[0])} SET synchronous_commit = on; (new sessions wait; reconnect the others)`,
      ),
    );
  if (scope.othersWaiting.length)
    out.push(
      diag(
        'MR193',
        at,
        `commits of database${scope.othersWaiting.length === 1 ? '' : 's'} ${scope.othersWaiting.join(', ')} on peer ${source}'s cluster, which no sync mirror carries, wait for the sync mirrors too (synchronous_commit = ${scope.cluster ?? 'on'} for the cluster)${roleText}`,
        `to scope the wait to the mirrored database${mirrored.length === 1 ? '' : 's'}: ${mirrored.map((d) => `ALTER DATABASE ${quoteIdent(d)} SET synchronous_commit = on;`).join(' ')} then ALTER SYSTEM SET synchronous_commit = local; SELECT pg_reload_conf(); sessions already connected to ${mirrored.join(', ')} keep the cluster's value until they reconnect (restart connection pools)`,
      ),
    );
  return out;
}
