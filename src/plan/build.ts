/**
 * Builds a Plan from Config and Live: diff, order, summary, config hash and live fingerprint. Pure.
 */
import type { Config } from '../config/types.js';
import type { Live, PeerLive } from '../inspect/types.js';
import { diff } from '../diff/index.js';
import { canonicalJson, sha256 } from '../util/canonical.js';
import { orderActions } from './order.js';
import { PLAN_FORMAT_VERSION, type Plan } from './types.js';

export function buildPlan(config: Config, live: Live, selected: string[] | null, createdBy: string): Plan {
  const d = diff(config, live, selected);
  const actions = orderActions(d.actions);
  const summary = { create: 0, update: 0, delete: 0, replace: 0, read: 0 };
  for (const a of actions) summary[a.op]++;
  const rank = { error: 0, warning: 1 };
  const diagnostics = [...d.diagnostics].sort(
    (a, b) => rank[a.severity] - rank[b.severity] || cmp(a.code, b.code) || cmp(a.address, b.address),
  );
  return {
    format_version: PLAN_FORMAT_VERSION,
    tool: 'mirrors',
    created_by: createdBy,
    config_file: config.file,
    config_hash: config.hash,
    live_fingerprint: liveFingerprint(live),
    selected: selected ? [...selected].sort() : null,
    mirrors: d.mirrors,
    diagnostics,
    actions,
    summary,
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function hasErrors(plan: Plan): boolean {
  return plan.diagnostics.some((d) => d.severity === 'error');
}

/**
 * A hash of the live state the plan depends on. Leaves out what moves on its own while nothing is
 * planned (lag, positions, retained WAL, row estimates, worker status), so a saved plan goes stale only
 * when the world changed in a way that matters.
 */
export function liveFingerprint(live: Live): string {
  const peers = Object.keys(live.peers).sort().map((name) => projectPeer(live.peers[name]));
  return sha256(canonicalJson(peers));
}

function projectPeer(p: PeerLive) {
  return {
    peer: p.peer,
    version: p.serverVersionNum,
    settings: p.settings,
    role: p.role,
    tables: Object.keys(p.tables).sort().map((k) => {
      const t = p.tables[k];
      return {
        schema: t.schema, name: t.name, kind: t.kind, columns: t.columns, primaryKey: t.primaryKey,
        replicaIdentity: t.replicaIdentity, replicaIdentityColumns: t.replicaIdentityColumns,
        indexes: t.indexes, foreignKeys: t.foreignKeys, canSelect: t.canSelect, hasRows: t.hasRows,
      };
    }),
    types: p.types,
    publications: p.publications,
    slots: Object.keys(p.slots).sort().map((k) => ({ name: k, plugin: p.slots[k].plugin, lost: p.slots[k].walStatus === 'lost' })),
    extensions: p.extensions.installed,
    catalog: {
      version: p.catalog.version,
      mirrors: Object.keys(p.catalog.mirrors).sort().map((k) => {
        const m = p.catalog.mirrors[k];
        return { name: m.name, sourcePeer: m.sourcePeer, phase: m.phase, settings: m.settings };
      }),
      tables: p.catalog.tables.map((t) => ({ ...t, rowsCopied: undefined, bytesCopied: undefined })),
    },
  };
}
