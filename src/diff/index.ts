/**
 * diff: desired (Config) against live (Live) -> the actions that make them agree, with their
 * dependencies, plus preflight diagnostics. Pure: no I/O, no `pg`. Ordering is plan/order.ts's job.
 */
import { displayQualified, tableKey, type QualifiedName } from '../config/names.js';
import type { Config, Mirror } from '../config/types.js';
import type { Live, LiveTable, PeerLive, CatalogTable } from '../inspect/types.js';
import { CATALOG_VERSION } from '../catalog/migrations.js';
import type { Action, ActionKind, Diagnostic, Op, Risk, TableSpec } from '../plan/types.js';
import { diag } from '../plan/diagnostics.js';
import { formatBytes } from '../util/format.js';
import * as A from '../plan/address.js';
import { resolveMirrorTables, type ResolvedTable } from './resolve.js';
import { checkExistingDestination, checkSourcePeer, checkSourceTable } from './checks.js';
import { checkPrivileges } from './checks.js';
import { changedSettings, settingsOf } from './settings.js';
import {
  addForeignKeySql, copiedColumns, createExtensionSql, createIndexSql, createPublicationSql, createTableSql,
  createTypeSql, fkColumns, indexUsesColumns, keyColumns, setPublicationTablesSql, type PublishedTable,
  createGuardSql, dropGuardSql,
} from './ddl.js';

export interface DiffResult {
  actions: Action[];
  diagnostics: Diagnostic[];
  /** Mirrors covered: selected config mirrors plus catalog mirrors being destroyed. */
  mirrors: string[];
}

/**
 * @param selected mirror names from --mirror, or null for all. With null, every mirror recorded in an
 * inspected destination's catalog but absent from the config is destroyed.
 */
export function diff(config: Config, live: Live, selected: string[] | null): DiffResult {
  const d = new Differ(config, live);
  const wanted = (selected ?? Object.keys(config.mirrors)).filter((n) => config.mirrors[n]).sort();
  const resolved = new Map<string, ResolvedTable[]>();
  for (const name of wanted) {
    const m = config.mirrors[name];
    const r = resolveMirrorTables(m, live.peers[m.source]);
    d.diagnostics.push(...r.diagnostics);
    resolved.set(name, r.tables);
  }
  d.checkDestinationOverlaps(resolved);
  for (const name of wanted) d.mirror(config.mirrors[name], resolved.get(name)!);
  const destroyed = d.destroyRemoved(selected);
  d.checkSources(wanted.map((n) => config.mirrors[n]));
  d.diagnostics.push(...checkPrivileges(live, d.actions, wanted.map((n) => config.mirrors[n])));
  return { actions: d.actions, diagnostics: d.diagnostics, mirrors: [...wanted, ...destroyed].sort() };
}

class Differ {
  actions: Action[] = [];
  diagnostics: Diagnostic[] = [];
  private byId = new Map<string, Action>();
  /** Per source peer: slots and WAL senders the plan adds. */
  private newSlots = new Map<string, number>();
  private newSenders = new Map<string, number>();

  constructor(private config: Config, private live: Live) {}

  private add(kind: ActionKind, op: Op, address: string, peer: string, reason: string, extra: Partial<Action> = {}): Action {
    const id = `${op}:${address}`;
    const existing = this.byId.get(id);
    if (existing) return existing;
    const a: Action = { id, kind, op, address, peer, reason, risk: extra.risk ?? 'safe', dependsOn: [], ...extra };
    this.byId.set(id, a);
    this.actions.push(a);
    return a;
  }

  private bump(map: Map<string, number>, peer: string, n = 1) {
    map.set(peer, (map.get(peer) ?? 0) + n);
  }

  /** The catalog schema on a destination, created or migrated once per peer. */
  private catalog(dst: PeerLive): string[] {
    const v = dst.catalog.version;
    if (v >= CATALOG_VERSION) return [];
    if (v === 0 && !dst.role.canCreateInDatabase && !dst.role.superuser) {
      this.diagnostics.push(diag('MR107', A.peerAddress(dst.peer), `role ${dst.role.name} cannot create the catalog schema "mirrors" in database ${dst.database} on peer ${dst.peer}`, `GRANT CREATE ON DATABASE ${dst.database} TO ${dst.role.name};`));
    }
    const a = this.add('catalog', v === 0 ? 'create' : 'update', A.catalogAddress(dst.peer), dst.peer,
      v === 0 ? `create the catalog schema "mirrors" (migrations 1..${CATALOG_VERSION})` : `migrate the catalog from version ${v} to ${CATALOG_VERSION}`,
      { before: v === 0 ? undefined : { version: v }, after: { version: CATALOG_VERSION }, details: { fromVersion: v, toVersion: CATALOG_VERSION } });
    return [a.id];
  }

  checkDestinationOverlaps(resolved: Map<string, ResolvedTable[]>) {
    const owner = new Map<string, string>();
    // Tables other mirrors already own on each destination, per the catalog.
    for (const [peer, p] of Object.entries(this.live.peers)) {
      for (const t of p.catalog.tables) owner.set(`${peer}\u0000${tableKey(t.destination)}`, t.mirror);
    }
    for (const [name, tables] of resolved) {
      const m = this.config.mirrors[name];
      const seen = new Set<string>();
      for (const t of tables) {
        const k = `${m.destination}\u0000${tableKey(t.destination)}`;
        if (t.destination.schema === 'mirrors') {
          this.diagnostics.push(diag('MR144', A.tableAddress(name, t.destination), `destination ${displayQualified(t.destination)} is in the schema "mirrors", which holds the tool's catalog`, 'map the table to another schema with destination_table'));
        }
        if (seen.has(k)) {
          this.diagnostics.push(diag('MR140', A.tableAddress(name, t.destination), `mirror ${name} maps two source tables to ${displayQualified(t.destination)}`, 'give one of them another destination_table'));
        }
        seen.add(k);
        const other = owner.get(k);
        if (other && other !== name) {
          this.diagnostics.push(diag('MR140', A.tableAddress(name, t.destination), `${displayQualified(t.destination)} on peer ${m.destination} is also written by mirror ${other}`, 'map one of them to another destination_table'));
        } else owner.set(k, name);
      }
    }
  }

  checkSources(mirrors: Mirror[]) {
    const bySource = new Map<string, Mirror[]>();
    for (const m of mirrors) bySource.set(m.source, [...(bySource.get(m.source) ?? []), m]);
    for (const [peer, ms] of [...bySource].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const src = this.live.peers[peer];
      if (!src) continue;
      const sync = Object.values(this.config.mirrors).filter((m) => m.source === peer && m.mode === 'sync').length;
      this.diagnostics.push(...checkSourcePeer(src, ms, this.newSlots.get(peer) ?? 0, this.newSenders.get(peer) ?? 0, sync));
    }
  }

  mirror(m: Mirror, tables: ResolvedTable[]) {
    const src = this.live.peers[m.source];
    const dst = this.live.peers[m.destination];
    if (!src || !dst) return; // inspection failed: the CLI has already reported it
    const recorded = dst.catalog.mirrors[m.name];
    if (recorded && recorded.sourcePeer !== m.source) {
      this.diagnostics.push(diag('MR143', A.mirrorAddress(m.name), `mirror ${m.name} streams from peer ${recorded.sourcePeer}; the config now says ${m.source}`, 'a mirror cannot change its source: give the new one another name (the old one is then destroyed)'));
      return;
    }
    const catalogDeps = this.catalog(dst);
    if (!recorded) this.newMirror(m, tables, src, dst, catalogDeps);
    else this.existingMirror(m, tables, src, dst, catalogDeps);
  }

  private newMirror(m: Mirror, tables: ResolvedTable[], src: PeerLive, dst: PeerLive, catalogDeps: string[]) {
    const pubName = A.publicationName(m.name);
    const slotName = A.slotName(m.name);
    if (src.publications[pubName]) {
      this.diagnostics.push(diag('MR131', A.publicationAddress(m.name), `publication ${pubName} exists on peer ${src.peer} but peer ${dst.peer}'s catalog has no mirror ${m.name}`, `if it is a leftover of this mirror, DROP PUBLICATION ${pubName}; on the source; mirrors never takes over objects it did not create`));
    }
    if (src.slots[slotName]) {
      const other = src.slots[slotName].database && src.slots[slotName].database !== src.database ? ` (for database ${src.slots[slotName].database})` : '';
      this.diagnostics.push(diag('MR132', A.slotAddress(m.name), `replication slot ${slotName} exists on peer ${src.peer}${other} but peer ${dst.peer}'s catalog has no mirror ${m.name}`, `if it is a leftover, SELECT pg_drop_replication_slot('${slotName}'); on the source (it retains WAL while it exists)`));
    }
    const settings = settingsOf(m);
    const mirrorAction = this.add('mirror', 'create', A.mirrorAddress(m.name), dst.peer,
      `new mirror ${m.source} -> ${m.destination} (${m.mode}, ${tables.length} table${tables.length === 1 ? '' : 's'})`,
      {
        mirror: m.name,
        after: { source: m.source, destination: m.destination, ...settings },
        dependsOn: catalogDeps,
        details: { sourcePeer: m.source, settings, configHash: this.config.hash, slot: slotName, publication: pubName },
      });
    const specs = this.tables(m, tables, src, dst, [mirrorAction.id], m.do_initial_snapshot, null);
    const pub = this.add('publication', 'create', A.publicationAddress(m.name), src.peer,
      `publish ${specs.published.length} table${specs.published.length === 1 ? '' : 's'} on peer ${src.peer}`,
      {
        mirror: m.name,
        after: { name: pubName, tables: specs.published.map(pubDisplay), publish_via_partition_root: true },
        dependsOn: [mirrorAction.id],
        details: { name: pubName, tables: specs.published, sql: specs.published.length ? createPublicationSql(pubName, specs.published) : null },
      });
    const slot = this.add('slot', 'create', A.slotAddress(m.name), src.peer,
      `logical slot ${slotName} (pgoutput) with an exported snapshot: the mirror's consistent point`,
      { mirror: m.name, after: { name: slotName, plugin: 'pgoutput' }, dependsOn: [pub.id], details: { name: slotName, plugin: 'pgoutput' } });
    this.bump(this.newSlots, src.peer);
    this.bump(this.newSenders, src.peer);
    const snap = this.snapshot(m, specs.specs, [slot.id, ...specs.tableActionIds], 'initial');
    this.postSnapshot(m, specs, snap);
  }

  private existingMirror(m: Mirror, tables: ResolvedTable[], src: PeerLive, dst: PeerLive, catalogDeps: string[]) {
    const recorded = dst.catalog.mirrors[m.name];
    const pubName = A.publicationName(m.name);
    const slotName = A.slotName(m.name);
    const mirrorAddr = A.mirrorAddress(m.name);
    const base = [...catalogDeps];
    const changed = changedSettings(recorded.settings, settingsOf(m));
    if (changed) {
      const keys = Object.keys(changed.after);
      const u = this.add('mirror', 'update', mirrorAddr, dst.peer, `settings changed: ${keys.join(', ')}`, {
        mirror: m.name, before: changed.before, after: changed.after, dependsOn: catalogDeps,
        details: { settings: settingsOf(m), configHash: this.config.hash },
      });
      base.push(u.id);
    }

    // The slot: missing or past its WAL means the stream cannot resume: new slot, every table copied again.
    const slot = src.slots[slotName];
    let fullResync: 'missing' | 'lost' | null = null;
    let slotActionId: string | null = null;
    if (!slot) fullResync = 'missing';
    else if (slot.walStatus === 'lost') fullResync = 'lost';
    if (fullResync && m.resync_strategy === 'swap') {
      this.diagnostics.push(diag('MR135', A.snapshotAddress(m.name), `mirror ${m.name} must copy every table again and asks for resync_strategy swap, which this version does not implement`, 'set resync_strategy: truncate for this mirror to copy them again now (readers see each table empty while it is copied); nothing is changed until then'));
    }
    if (fullResync === 'lost') {
      this.diagnostics.push(diag('MR130', A.slotAddress(m.name), `slot ${slotName} on peer ${src.peer} lost WAL the mirror had not applied; the mirror needs a full resync`, 'the plan replaces the slot and copies every table again; raise max_slot_wal_keep_size to avoid this'));
      const a = this.add('slot', 'replace', A.slotAddress(m.name), src.peer, 'the slot lost required WAL (wal_status = lost): drop it, create a new one, copy every table again', {
        mirror: m.name, risk: 'disruptive', before: { wal_status: 'lost' }, after: { name: slotName, plugin: 'pgoutput' }, dependsOn: base,
        details: { name: slotName, plugin: 'pgoutput' },
      });
      slotActionId = a.id;
    } else if (fullResync === 'missing') {
      const a = this.add('slot', 'create', A.slotAddress(m.name), src.peer, `slot ${slotName} is missing on peer ${src.peer}: create it and copy every table again`, {
        mirror: m.name, risk: 'disruptive', after: { name: slotName, plugin: 'pgoutput' }, dependsOn: base, details: { name: slotName, plugin: 'pgoutput' },
      });
      slotActionId = a.id;
      this.bump(this.newSlots, src.peer);
    }

    const recordedTables = new Map(dst.catalog.tables.filter((t) => t.mirror === m.name).map((t) => [tableKey(t.destination), t]));
    const specs = this.tables(m, tables, src, dst, base, true, recordedTables);
    const desiredKeys = new Set(tables.map((t) => tableKey(t.destination)));
    const removed: string[] = [];
    for (const [k, t] of recordedTables) {
      if (desiredKeys.has(k)) continue;
      const a = this.add('table', 'delete', A.tableAddress(m.name, t.destination), dst.peer,
        `no longer mapped: stop mirroring ${displayQualified(t.source)}; destination table ${displayQualified(t.destination)} and its rows are kept, and it becomes writable`,
        { mirror: m.name, before: { source: displayQualified(t.source) }, dependsOn: base, details: { destination: t.destination, sql: dst.tables[k] ? [dropGuardSql(t.destination)] : [] } });
      removed.push(a.id);
    }

    // The publication: created if missing, its table list set when it differs.
    const pub = src.publications[pubName];
    let pubActionId: string | null = null;
    if (!pub) {
      const a = this.add('publication', 'create', A.publicationAddress(m.name), src.peer, `publication ${pubName} is missing on peer ${src.peer}`, {
        mirror: m.name, after: { name: pubName, tables: specs.published.map(pubDisplay) }, dependsOn: base,
        details: { name: pubName, tables: specs.published, sql: specs.published.length ? createPublicationSql(pubName, specs.published) : null },
      });
      pubActionId = a.id;
    } else {
      const want = specs.published.map(pubDisplay).sort();
      const have = pub.tables.map((t) => pubDisplay({ schema: t.schema, name: t.name, columns: t.columns && sameColumns(t, src) ? null : t.columns })).sort();
      if (JSON.stringify(want) !== JSON.stringify(have)) {
        const a = this.add('publication', 'update', A.publicationAddress(m.name), src.peer, 'published tables or column lists differ', {
          mirror: m.name, before: { tables: have }, after: { tables: want }, dependsOn: [...base, ...specs.tableActionIds, ...removed],
          details: { name: pubName, tables: specs.published, sql: specs.published.length ? setPublicationTablesSql(pubName, specs.published) : null },
        });
        pubActionId = a.id;
      }
    }
    if (slotActionId && pubActionId) this.byId.get(slotActionId)!.dependsOn.push(pubActionId);

    const toCopy = specs.specs.filter((s) => fullResync || specs.needCopy.has(tableKey(s.destination)));
    let snapId: string | null = null;
    if (toCopy.length) {
      const deps = [...(slotActionId ? [slotActionId] : []), ...(pubActionId ? [pubActionId] : []), ...specs.tableActionIds];
      snapId = this.snapshot(m, toCopy, deps, fullResync ? 'full' : 'tables');
    }
    if (snapId || recorded.phase !== 'ready') this.postSnapshot(m, specs, snapId);
  }

  /**
   * Table actions for a mirror: destination tables (and the types they need), and which tables need a copy.
   * `recorded` is null for a new mirror (every table is new to the stream).
   */
  private tables(m: Mirror, tables: ResolvedTable[], src: PeerLive, dst: PeerLive, deps: string[], copy: boolean, recorded: Map<string, CatalogTable> | null) {
    const specs: TableSpec[] = [];
    const published: PublishedTable[] = [];
    const tableActionIds: string[] = [];
    const needCopy = new Set<string>();
    const created: { t: ResolvedTable; source: LiveTable }[] = [];
    const sourceToDest = new Map(tables.map((t) => [tableKey(t.source), t.destination]));
    for (const t of tables) {
      const checked = checkSourceTable(src, t);
      this.diagnostics.push(...checked.diagnostics);
      const source = checked.table;
      if (!source) continue;
      const cols = copiedColumns(source, t.excludeColumns);
      const spec: TableSpec = {
        source: t.source,
        destination: t.destination,
        columns: cols.map((c) => ({ name: c.name, type: c.type, notNull: c.notNull })),
        primaryKey: keyColumns(source),
        excludeColumns: t.excludeColumns,
        partitionKey: t.partitionKey,
        estimatedRows: source.estimatedRows,
        sizeBytes: source.sizeBytes,
      };
      specs.push(spec);
      published.push({ schema: t.source.schema, name: t.source.name, columns: t.excludeColumns.length ? source.columns.filter((c) => !t.excludeColumns.includes(c.name) && c.generated === '').map((c) => c.name) : null });

      const key = tableKey(t.destination);
      const rec = recorded?.get(key);
      const address = A.tableAddress(m.name, t.destination);
      const dest = dst.tables[key];
      if (rec) {
        const sourceChanged = tableKey(rec.source) !== tableKey(t.source);
        const excludesChanged = JSON.stringify([...rec.excludeColumns].sort()) !== JSON.stringify([...t.excludeColumns].sort());
        if (sourceChanged || excludesChanged) {
          const a = this.add('table', 'replace', address, dst.peer,
            sourceChanged ? `source changed from ${displayQualified(rec.source)} to ${displayQualified(t.source)}: copy it again` : 'exclude_columns changed: copy the table again',
            { mirror: m.name, risk: 'disruptive', before: { source: displayQualified(rec.source), exclude_columns: rec.excludeColumns }, after: { source: displayQualified(t.source), exclude_columns: t.excludeColumns }, dependsOn: deps, details: { spec, createTable: false } });
          tableActionIds.push(a.id);
          needCopy.add(key);
          if (dest) this.diagnostics.push(...checkExistingDestination(dest, source, t, false));
        } else {
          if ((rec.partitionKey ?? null) !== t.partitionKey) {
            const a = this.add('table', 'update', address, dst.peer, 'partition_key changed (used by the next copy of this table)', {
              mirror: m.name, before: { partition_key: rec.partitionKey }, after: { partition_key: t.partitionKey }, dependsOn: deps, details: { spec, createTable: false },
            });
            tableActionIds.push(a.id);
          }
          if (rec.state !== 'ready') needCopy.add(key);
          if (dest && dest.hasGuard === false) {
            const a = this.add('table', 'update', address, dst.peer, 'add the read-only guard: writes by anyone but the worker fail with MIRROR_READ_ONLY', {
              mirror: m.name, before: { read_only: false }, after: { read_only: true }, dependsOn: deps,
              details: { spec, createTable: false, sql: [createGuardSql(t.destination, m.name, m.source)] },
            });
            tableActionIds.push(a.id);
          }
        }
        continue;
      }
      // A table new to the stream.
      if (copy) needCopy.add(key);
      const typeDeps = dest ? [] : this.typesFor(source, src, dst);
      if (dest) this.diagnostics.push(...checkExistingDestination(dest, source, t, copy));
      else created.push({ t, source });
      const a = this.add('table', 'create', address, dst.peer,
        (dest ? `mirror ${displayQualified(t.source)} into the existing ${displayQualified(t.destination)} (columns fit)` : `create ${displayQualified(t.destination)} ${sameQ(t.source, t.destination) ? 'as on the source' : `from ${displayQualified(t.source)}`}${t.excludeColumns.length ? `, without ${t.excludeColumns.join(', ')}` : ''}`) + '; read-only (MIRROR_READ_ONLY) until promotion',
        {
          mirror: m.name,
          after: { source: displayQualified(t.source), columns: spec.columns.length, key: spec.primaryKey, exclude_columns: t.excludeColumns },
          dependsOn: [...deps, ...typeDeps],
          details: {
            spec,
            createTable: !dest,
            sql: [...(dest ? [] : createTableSql(source, t.destination, t.excludeColumns)), ...(dest?.hasGuard ? [] : [createGuardSql(t.destination, m.name, m.source)])],
          },
        });
      tableActionIds.push(a.id);
    }
    return { specs, published, tableActionIds, needCopy, created, sourceToDest };
  }

  /** Type and extension actions a new destination table needs, in dependency order. */
  private typesFor(source: LiveTable, src: PeerLive, dst: PeerLive): string[] {
    const ids: string[] = [];
    const visit = (key: string | undefined): string | null => {
      if (!key) return null;
      const t = src.types[key];
      if (!t) return null;
      if (t.extension) {
        if (dst.extensions.installed.includes(t.extension)) return null;
        if (!dst.extensions.available.includes(t.extension)) {
          this.diagnostics.push(diag('MR124', A.extensionAddress(dst.peer, t.extension), `type ${displayQualified(t)} comes from extension ${t.extension}, which peer ${dst.peer} does not have`, `install the ${t.extension} extension's package on the destination server`));
          return null;
        }
        return this.add('extension', 'create', A.extensionAddress(dst.peer, t.extension), dst.peer, `type ${displayQualified(t)} needs extension ${t.extension}`, {
          after: { extension: t.extension }, details: { sql: createExtensionSql(t.extension) },
        }).id;
      }
      if (dst.types[key]) return null;
      const inner = [visit(t.baseUserType), ...(t.attributes ?? []).map((a) => visit(a.userType))].filter((x): x is string => !!x);
      return this.add('type', 'create', A.typeAddress(dst.peer, t), dst.peer, `${t.kind} type used by mirrored columns`, {
        after: { kind: t.kind, ...(t.labels ? { labels: t.labels } : {}) }, dependsOn: inner, details: { sql: createTypeSql(t) },
      }).id;
    };
    for (const c of source.columns) {
      const id = visit(c.userType);
      if (id && !ids.includes(id)) ids.push(id);
    }
    return ids;
  }

  private snapshot(m: Mirror, specs: TableSpec[], deps: string[], kind: 'initial' | 'full' | 'tables'): string {
    const copy = kind !== 'initial' || m.do_initial_snapshot;
    const unknownRows = specs.some((s) => s.estimatedRows === '-1');
    const rows = specs.reduce((n, s) => n + BigInt(s.estimatedRows === '-1' ? '0' : s.estimatedRows), 0n);
    const bytes = specs.reduce((n, s) => n + BigInt(s.sizeBytes), 0n);
    const reason = !copy
      ? 'do_initial_snapshot is false: tables start from the slot\'s consistent point without a copy'
      : kind === 'tables'
        ? `copy ${specs.length} table${specs.length === 1 ? '' : 's'} in a new snapshot of their own (temporary slot), then stream them from it`
        : `copy ${specs.length} table${specs.length === 1 ? '' : 's'} (${unknownRows ? '' : `~${rows} rows, `}${formatBytes(bytes)}) at the slot's consistent point, ${m.snapshot_num_tables_in_parallel} tables at a time`;
    if (kind === 'tables') this.bump(this.newSlots, m.source);
    return this.add('snapshot', 'create', A.snapshotAddress(m.name), m.destination, reason, {
      mirror: m.name,
      risk: kind === 'full' ? 'disruptive' : 'safe',
      after: { tables: specs.map((s) => displayQualified(s.destination)), estimated_rows: rows.toString(), estimated_bytes: bytes.toString() },
      dependsOn: deps,
      details: { kind, copy, tables: specs, strategy: kind === 'full' ? m.resync_strategy : 'truncate' },
    }).id;
  }

  /** Indexes and foreign keys of tables mirrors created, after their data; then the hand-over to `run`. */
  private postSnapshot(m: Mirror, specs: ReturnType<Differ['tables']>, snapId: string | null) {
    const after: string[] = [];
    const deps = snapId ? [snapId] : [];
    const indexIds = new Map<string, string>();
    if (m.replicate_indexes) {
      for (const { t, source } of specs.created) {
        const key = keyColumns(source).join('\u0000');
        const sql = source.indexes
          .filter((i) => !i.primary && !(i.unique && i.columns.join('\u0000') === key && source.replicaIdentity === 'i'))
          .filter((i) => !indexUsesColumns(i, t.excludeColumns))
          .map((i) => createIndexSql(i, t.destination))
          .filter((s): s is string => !!s);
        if (!sql.length) continue;
        const a = this.add('indexes', 'create', A.indexesAddress(m.name, t.destination), m.destination, `${sql.length} secondary index${sql.length === 1 ? '' : 'es'}, built after the copy`, {
          mirror: m.name, after: { count: sql.length }, dependsOn: deps, details: { sql },
        });
        indexIds.set(tableKey(t.destination), a.id);
        after.push(a.id);
      }
    }
    if (m.replicate_foreign_keys) {
      for (const { t, source } of specs.created) {
        const sql: string[] = [];
        const fkDeps = new Set(deps);
        for (const fk of source.foreignKeys) {
          const refDest = specs.sourceToDest.get(tableKey(fk.references));
          if (!refDest || fkColumns(fk).some((c) => t.excludeColumns.includes(c))) continue;
          const s = addForeignKeySql(fk, t.destination, refDest);
          if (!s) continue;
          sql.push(s);
          for (const k of [tableKey(t.destination), tableKey(refDest)]) {
            const id = indexIds.get(k);
            if (id) fkDeps.add(id);
          }
        }
        if (!sql.length) continue;
        const a = this.add('foreign_keys', 'create', A.foreignKeysAddress(m.name, t.destination), m.destination, `${sql.length} foreign key${sql.length === 1 ? '' : 's'} to mirrored tables`, {
          mirror: m.name, after: { count: sql.length }, dependsOn: [...fkDeps], details: { sql },
        });
        after.push(a.id);
      }
    }
    this.add('stream', 'create', A.streamAddress(m.name), m.destination, 'mark the mirror bootstrapped: `mirrors run` streams it from its consistent point', {
      mirror: m.name, dependsOn: [...deps, ...after, ...this.actions.filter((a) => a.mirror === m.name && a.kind !== 'stream').map((a) => a.id)],
    });
  }

  /** Mirrors in an inspected destination's catalog that the config no longer declares. */
  destroyRemoved(selected: string[] | null): string[] {
    const out: string[] = [];
    for (const [peer, dst] of Object.entries(this.live.peers).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (this.config.peers[peer] === undefined) continue;
      for (const rec of Object.values(dst.catalog.mirrors).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        if (this.config.mirrors[rec.name]) continue;
        if (selected && !selected.includes(rec.name)) continue;
        out.push(rec.name);
        this.destroy(rec.name, rec.sourcePeer, peer);
      }
    }
    return out;
  }

  private destroy(name: string, sourcePeer: string, destPeer: string) {
    const src = this.live.peers[sourcePeer];
    const mirrorDeps: string[] = [];
    if (!this.config.peers[sourcePeer] || !src) {
      this.diagnostics.push(diag('MR142', A.mirrorAddress(name), `mirror ${name} was removed from the config, and so was its source peer ${sourcePeer}: its slot and publication cannot be dropped`, `keep peer ${sourcePeer} declared until this destroy is applied`));
      return;
    }
    const slotName = A.slotName(name);
    const pubName = A.publicationName(name);
    const slot = src.slots[slotName];
    if (slot) {
      if (slot.active) {
        this.diagnostics.push(diag('MR134', A.slotAddress(name), `slot ${slotName} is in use (pid ${slot.activePid}) by a running worker`, `stop \`mirrors run\` for ${name} before applying; apply refuses to drop an active slot`));
      }
      mirrorDeps.push(this.add('slot', 'delete', A.slotAddress(name), sourcePeer, `mirror ${name} was removed from the config: drop its slot (releases retained WAL)`, {
        mirror: name, risk: 'irreversible', before: { name: slotName, retained_bytes: slot.retainedBytes }, details: { name: slotName },
      }).id);
    }
    if (src.publications[pubName]) {
      mirrorDeps.push(this.add('publication', 'delete', A.publicationAddress(name), sourcePeer, `mirror ${name} was removed from the config: drop its publication`, {
        mirror: name, before: { name: pubName }, dependsOn: [...mirrorDeps], details: { name: pubName },
      }).id);
    }
    const tables = this.live.peers[destPeer].catalog.tables.filter((t) => t.mirror === name);
    this.add('mirror', 'delete', A.mirrorAddress(name), destPeer,
      `mirror ${name} was removed from the config: forget it; destination tables${tables.length ? ' (' + tables.map((t) => displayQualified(t.destination)).join(', ') + ')' : ''} and their rows are kept, and become writable`,
      { mirror: name, risk: 'irreversible', before: { source: sourcePeer, tables: tables.length }, dependsOn: mirrorDeps, details: { keptTables: tables.map((t) => t.destination), sql: tables.filter((t) => this.live.peers[destPeer].tables[tableKey(t.destination)]).map((t) => dropGuardSql(t.destination)) } });
  }
}

function sameQ(a: QualifiedName, b: QualifiedName): boolean {
  return a.schema === b.schema && a.name === b.name;
}

function pubDisplay(t: PublishedTable): string {
  return displayQualified(t) + (t.columns ? ` (${t.columns.join(', ')})` : '');
}

/** A column list that names every column is the same as no column list. */
function sameColumns(t: { schema: string; name: string; columns: string[] | null }, src: PeerLive): boolean {
  const live = src.tables[tableKey(t)];
  if (!live || !t.columns) return false;
  const all = live.columns.filter((c) => c.generated === '').map((c) => c.name).sort();
  return JSON.stringify(all) === JSON.stringify([...t.columns].sort());
}

export type { QualifiedName };
