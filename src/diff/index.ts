/**
 * diff: desired (Config) against live (Live) -> the typed actions that make them agree, with their
 * dependencies, plus preflight diagnostics. Pure: no I/O, no `pg`. Ordering is plan/order.ts's job.
 * Every action carries all the SQL apply runs and every setting it needs (apply reads nothing else).
 */
import { displayIdent, displayQualified, tableKey, type QualifiedName } from '../config/names.js';
import { mirrorHash } from '../config/normalize.js';
import { REVERSE_SUFFIX, type Config, type Mirror } from '../config/types.js';
import type { Live, LivePublication, LiveTable, PeerLive, CatalogMirror, CatalogTable } from '../inspect/types.js';
import { lsnToBigInt } from '../db/lsn.js';
import { quoteIdent, quoteQualified } from '../db/quote.js';
import {
  fenceSql,
  finishPromotion,
  openPromotionAction,
  planPromotion,
  planPromotionWithoutSource,
  unfenceSql,
} from './promotion.js';
import { resolveMirrorTables, type ResolvedTable } from '../inspect/resolve.js';
import { CATALOG_VERSION, MIGRATIONS } from '../catalog/migrations.js';
import type {
  Action,
  Diagnostic,
  PromotionCreate,
  PlannedMirror,
  PublishedTable,
  ReasonCode,
  SnapshotDetails,
  TableSpec,
} from '../plan/types.js';
import { diag } from '../plan/diagnostics.js';
import * as addr from '../plan/address.js';
import { ActionSet } from './actions.js';
import { planSyncStandbys } from './sync-plan.js';
import { checkExistingDestination, checkPrivileges, checkSourcePeer, checkSourceTable } from './checks.js';
import { changedSettings, settingsOf } from './settings.js';
import { type ReadyTable, sourceGone, tableDrift } from './drift.js';
import { verifyDiagnostic } from './verify-result.js';
import { planSchemaChange } from './schema-plan.js';
import { MERGE_CHUNK_ROWS, mergeKey } from './merge-plan.js';
import { carriedSummary, swapPlan, swapRefusals } from './swap-plan.js';
import {
  dropRelaySql,
  RELAY_SCHEMA,
  relayName,
  relayPlan,
  type RelayPlan,
  relaySetupSql,
  relayTrigger,
} from './truncate-relay.js';
import {
  addForeignKeySql,
  copiedColumns,
  createExtensionSql,
  createIndexSql,
  createPublicationSql,
  createSchemaSql,
  createTableSql,
  createTypeSql,
  fkColumns,
  indexUsesColumns,
  keyColumns,
  setPublicationTablesSql,
  lockWritersSql,
  createGuardSql,
  dropGuardSql,
  enableGuardSql,
  publicationCommentSql,
  dropPublicationSql,
  dropSlotSql,
  createSlotCommand,
  emptyPublicationSql,
} from './ddl.js';

export interface DiffResult {
  actions: Action[];
  diagnostics: Diagnostic[];
  /** Mirrors covered: selected config mirrors plus catalog mirrors being destroyed, by name. */
  mirrors: PlannedMirror[];
}

/**
 * @param selected mirror names from --mirror, or null for all. With null, every mirror of this project
 * recorded in an inspected destination's catalog but absent from the config is destroyed.
 */
export function diff(config: Config, live: Live, selected: string[] | null, replace: string[] = []): DiffResult {
  const d = new Differ(config, live, replace);
  // A promotion with a reverse mirror plans that mirror too (its actions are steps of the promotion).
  const named = selected ?? Object.keys(config.mirrors);
  const reverses = Object.values(config.mirrors).filter((m) => m.reverseOf && named.includes(m.reverseOf));
  const wanted = [...new Set([...named, ...reverses.map((m) => m.name)])].filter((n) => config.mirrors[n]).sort();
  const resolved = new Map<string, ResolvedTable[]>();
  for (const name of wanted) {
    const m = config.mirrors[name];
    const r = resolveMirrorTables(m, live.peers[m.source]);
    d.diagnostics.push(...r.diagnostics);
    resolved.set(name, r.tables);
  }
  d.checkDestinationOverlaps(resolved);
  for (const name of wanted) d.mirror(config.mirrors[name], resolved.get(name)!);
  for (const name of wanted) d.openPromotion(config.mirrors[name]);
  const destroyed = d.destroyRemoved(selected);
  for (const a of replace)
    if (!d.replaced.has(a))
      d.diagnostics.push(
        diag(
          'MR139',
          a,
          `--replace ${a} names no copied table of the mirrors this plan covers`,
          'use the address of a table as `mirrors plan` prints it (mirror.NAME.table.SCHEMA.TABLE) or of a whole mirror (mirror.NAME); a table not copied yet is copied by the plan anyway',
        ),
      );
  planSyncStandbys(config, live, selected, d.actions, d.diagnostics);
  d.checkSources(wanted.map((n) => config.mirrors[n]));
  const declared = wanted.map((n) => ({
    name: n,
    source: config.mirrors[n].source,
    destination: config.mirrors[n].destination,
  }));
  const mirrors = [...declared, ...destroyed].sort((a, b) => (a.name < b.name ? -1 : 1));
  d.diagnostics.push(
    ...checkPrivileges(
      live,
      d.actions.list,
      wanted.map((n) => config.mirrors[n]),
    ),
  );
  // A table another mirror writes (MR140) must not be emptied for this one: MR122's TRUNCATE hint would.
  const overlapping = new Set(d.diagnostics.filter((x) => x.code === 'MR140').map((x) => x.address));
  const diagnostics = d.diagnostics.filter((x) => !(x.code === 'MR122' && overlapping.has(x.address)));
  return { actions: d.actions.list, diagnostics, mirrors };
}

type TablesResult = ReturnType<Differ['tables']>;

class Differ {
  readonly actions = new ActionSet();
  readonly diagnostics: Diagnostic[] = [];
  /** Per source peer: slots and WAL senders the plan adds. */
  private newSlots = new Map<string, number>();
  private newSenders = new Map<string, number>();
  private newerCatalogs = new Set<string>();

  /** --replace: addresses (a mirror, or one of its tables) to copy again, and those that named a table. */
  private readonly replace: Set<string>;
  readonly replaced = new Set<string>();

  constructor(
    private config: Config,
    private live: Live,
    replace: string[] = [],
  ) {
    this.replace = new Set(replace);
  }

  /** Whether --replace asks to copy this table again (its address, or its mirror's). */
  private replaceRequested(mirror: string, tableAddr: string): boolean {
    const asked = this.replace.has(tableAddr) || this.replace.has(addr.mirrorAddress(mirror));
    if (asked) this.replaced.add(this.replace.has(tableAddr) ? tableAddr : addr.mirrorAddress(mirror));
    return asked;
  }

  private bump(map: Map<string, number>, peer: string, n = 1) {
    map.set(peer, (map.get(peer) ?? 0) + n);
  }

  /** The catalog schema on a destination, created or migrated once per peer. */
  private catalog(dst: PeerLive): string[] {
    const v = dst.catalog.version;
    if (v > CATALOG_VERSION && !this.newerCatalogs.has(dst.peer)) {
      // A newer mirrors wrote it: this one would misread what it does not know (an older one ignores projects).
      this.newerCatalogs.add(dst.peer);
      this.diagnostics.push(
        diag(
          'MR148',
          addr.catalogAddress(dst.peer),
          `the catalog on peer ${dst.peer} is at version ${v}, newer than this mirrors knows (${CATALOG_VERSION})`,
          'run the mirrors version that migrated it (or a later one); every file applied to a destination must use it',
        ),
      );
    }
    if (v >= CATALOG_VERSION) return [];
    if (v === 0 && !dst.role.canCreateInDatabase && !dst.role.superuser) {
      this.diagnostics.push(
        diag(
          'MR107',
          addr.peerAddress(dst.peer),
          `role ${dst.role.name} cannot create the catalog schema "mirrors" in database ${dst.database} on peer ${dst.peer}`,
          `GRANT CREATE ON DATABASE ${dst.database} TO ${dst.role.name};`,
        ),
      );
    }
    const versions = {
      from_version: v,
      to_version: CATALOG_VERSION,
      migrations: MIGRATIONS.filter((x) => x.version > v).map((x) => ({ version: x.version, name: x.name })),
    };
    const common = { address: addr.catalogAddress(dst.peer), peer: dst.peer, mirror: null, risk: 'safe' } as const;
    const a =
      v === 0
        ? this.actions.add({
            ...common,
            kind: 'catalog',
            op: 'create',
            reason_code: 'catalog_missing',
            reason: `create the catalog schema "mirrors" (migrations 1..${CATALOG_VERSION})`,
            before: null,
            after: { version: CATALOG_VERSION },
            details: versions,
            depends_on: [],
          })
        : this.actions.add({
            ...common,
            kind: 'catalog',
            op: 'update',
            reason_code: 'catalog_outdated',
            reason: `migrate the catalog from version ${v} to ${CATALOG_VERSION}`,
            before: { version: v },
            after: { version: CATALOG_VERSION },
            details: versions,
            depends_on: [],
          });
    return [a.id];
  }

  /** A destination schema that does not exist yet, created once per peer before its tables and types. */
  private schema(dst: PeerLive, schema: string): string[] {
    if (dst.schemas[schema]) return [];
    return [
      this.actions.add({
        kind: 'schema',
        op: 'create',
        address: addr.schemaAddress(dst.peer, schema),
        peer: dst.peer,
        mirror: null,
        reason: `schema ${displayIdent(schema)} does not exist on peer ${dst.peer}`,
        reason_code: 'schema_missing',
        risk: 'safe',
        before: null,
        after: { schema },
        depends_on: [],
        details: { sql: [createSchemaSql(schema)] },
      }).id,
    ];
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
        const at = addr.tableAddress(name, t.destination);
        const dest = displayQualified(t.destination);
        if (t.destination.schema === 'mirrors') {
          this.diagnostics.push(
            diag(
              'MR144',
              at,
              `destination ${dest} is in the schema "mirrors", which holds the tool's catalog`,
              'map the table to another schema with destination_table',
            ),
          );
        }
        if (seen.has(k)) {
          this.diagnostics.push(
            diag(
              'MR140',
              at,
              `mirror ${name} maps two source tables to ${dest}`,
              'give one of them another destination_table',
            ),
          );
        }
        seen.add(k);
        const other = owner.get(k);
        if (other && other !== name) {
          this.diagnostics.push(
            diag(
              'MR140',
              at,
              `${dest} on peer ${m.destination} is also written by mirror ${other}`,
              'map one of them to another destination_table',
            ),
          );
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
      this.diagnostics.push(
        ...checkSourcePeer(src, ms, this.newSlots.get(peer) ?? 0, this.newSenders.get(peer) ?? 0, sync),
      );
    }
  }

  mirror(m: Mirror, tables: ResolvedTable[]) {
    const src = this.live.peers[m.source];
    const dst = this.live.peers[m.destination];
    if (!dst) return; // inspection failed: the CLI has already reported it
    if (!src) {
      const why = this.live.unreachable?.[m.source];
      if (why) this.withoutSource(m, dst, why);
      return;
    }
    const recorded = dst.catalog.mirrors[m.name];
    if (recorded && recorded.project !== this.config.project) {
      this.diagnostics.push(
        diag(
          'MR145',
          addr.mirrorAddress(m.name),
          `mirror ${m.name} on peer ${dst.peer} belongs to project ${recorded.project}, not to this file's project ${this.config.project}`,
          `give this mirror another name, or set \`project: ${recorded.project}\` if this file now manages it`,
        ),
      );
      return;
    }
    if (recorded && recorded.sourcePeer !== m.source) {
      this.diagnostics.push(
        diag(
          'MR143',
          addr.mirrorAddress(m.name),
          `mirror ${m.name} streams from peer ${recorded.sourcePeer}; the config now says ${m.source}`,
          'a mirror cannot change its source: give the new one another name (the old one is then destroyed)',
        ),
      );
      return;
    }
    const elsewhere = Object.values(this.live.peers).find(
      (p) => p.peer !== dst.peer && p.catalog.mirrors[m.name]?.project === this.config.project,
    );
    if (!recorded && elsewhere) {
      this.diagnostics.push(
        diag(
          'MR149',
          addr.mirrorAddress(m.name),
          `mirror ${m.name} is recorded on peer ${elsewhere.peer}; the config now says its destination is ${m.destination}`,
          'a mirror cannot move to another destination: give the new one another name (the old one is then destroyed)',
        ),
      );
      return;
    }
    // Promoted: its tables are ordinary tables of the new primary; nothing is mirrored any more (what an
    // interrupted promotion left on the source goes).
    if (recorded?.promotedAt) {
      const finish = finishPromotion(
        m,
        recorded,
        dst.catalog.tables.filter((t) => t.mirror === m.name),
        src,
        dst,
      );
      if (finish) this.actions.add(finish);
      if (finish?.details.fence_after) {
        const slot = addr.slotName(m.name);
        this.diagnostics.push(
          diag(
            'MR187',
            addr.promotionAddress(m.name),
            `peer ${m.source} answers again after mirror ${m.name} was promoted without it: what it committed after the destination's last applied transaction, and any write it took since it came back, exist only there`,
            `before applying (it fences peer ${m.source} and drops slot ${slot}, which still holds those changes), find them: SELECT lsn, xid FROM pg_logical_slot_peek_binary_changes('${slot}', NULL, NULL, 'proto_version', '1', 'publication_names', '${addr.publicationName(m.name)}'); lists their transactions without consuming them; compare the tables and copy what you need to peer ${m.destination}`,
          ),
        );
      }
      return;
    }
    const promotionId = m.reverseOf && !recorded ? this.reverseGate(m) : null;
    if (promotionId === false) return;
    const catalogDeps = this.catalog(dst);
    if (!recorded) this.newMirror(m, tables, src, dst, catalogDeps);
    else this.existingMirror(m, tables, src, dst, catalogDeps);
    // The reverse mirror is created once the new primary holds everything up to the fence, and before it
    // takes a write: after the promotion's point of no return (its tables still guarded until the opening).
    if (promotionId)
      for (const a of this.actions.list.filter((x) => x.mirror === m.name)) this.actions.dependOn(a.id, promotionId);
    if (m.promote) this.promotion(m, recorded, src, dst);
  }

  /**
   * Whether the reverse mirror `m` (not recorded yet) may be planned now, without a copy: with the promotion
   * that creates it (the id of its action), or to finish one an apply left half done (null: nothing to wait
   * for). false: not now, or never (MR184: promoted without it, the old source is no copy of the new primary).
   */
  private reverseGate(m: Mirror): string | null | false {
    const forward = this.config.mirrors[m.reverseOf!];
    const fwdRecord = this.live.peers[forward.destination]?.catalog.mirrors[forward.name];
    const planned = `create:${addr.promotionAddress(forward.name)}`;
    if (!fwdRecord?.promotedAt) return this.actions.get(planned) ? planned : false;
    // Half done: created after the point of no return; the leftovers' cleanup (same id) need not come first.
    if (fwdRecord.promotion?.reverse === 'pending') return null;
    this.diagnostics.push(
      diag(
        'MR184',
        addr.mirrorAddress(m.name),
        `mirror ${forward.name} was promoted without its reverse mirror ${m.name}: peer ${m.destination} is no longer a copy of peer ${m.source}, and a mirror without a copy would differ from it`,
        `remove \`reverse: true\` from mirror ${forward.name}; to mirror back, declare a new mirror from ${m.source} to ${m.destination} under another name (its tables are copied; empty the destination tables first)`,
      ),
    );
    return false;
  }

  /**
   * The last step of a promotion with a reverse mirror (after the reverse mirror exists): the new primary takes
   * writes, and the old source trades its fence for the mirror guard (diff/promotion.ts openPromotionAction).
   */
  openPromotion(m: Mirror) {
    if (!m.promote?.reverse) return;
    const reverse = this.config.mirrors[`${m.name}${REVERSE_SUFFIX}`];
    const dst = this.live.peers[m.destination];
    const src = this.live.peers[m.source];
    if (!reverse || !dst || !src) return;
    // The promotion itself, not the finishing of one (which also has this id).
    const planned = this.actions.get(`create:${addr.promotionAddress(m.name)}`) as PromotionCreate | undefined;
    const created = planned?.details.reverse_mirror ? planned : undefined;
    const recorded = dst.catalog.mirrors[m.name];
    if (!created && !(recorded?.promotedAt && recorded.promotion?.reverse === 'pending')) return;
    const steps = this.actions.list.filter((a) => a.mirror === reverse.name).map((a) => a.id);
    const tables = created
      ? created.details.tables
      : dst.catalog.tables
          .filter((t) => t.mirror === m.name)
          .map((t) => ({ source: t.source, destination: t.destination }));
    this.actions.add(
      openPromotionAction(m, reverse.name, tables, src, dst, [...(created ? [created.id] : []), ...steps]),
    );
  }

  /**
   * The source cannot be reached (inspect tolerates that only for mirrors that all declare `promote:`): the
   * promotion without it (disaster recovery), or, once promoted, a word that the old source waits.
   */
  private withoutSource(m: Mirror, dst: PeerLive, unreachable: string) {
    const at = addr.mirrorAddress(m.name);
    const recorded = dst.catalog.mirrors[m.name];
    if (recorded?.promotedAt) {
      this.diagnostics.push(
        diag(
          'MR183',
          addr.promotionAddress(m.name),
          `mirror ${m.name} is promoted; its old source, peer ${m.source}, cannot be reached (${unreachable})`,
          'once it answers again, `mirrors plan` shows what is left to do there (its slot and publication dropped, the fence after a promotion without it)',
        ),
      );
      return;
    }
    if (!recorded || recorded.project !== this.config.project) {
      this.diagnostics.push(
        diag(
          'MR181',
          at,
          `peer ${m.source} cannot be reached (${unreachable}) and mirror ${m.name} ${recorded ? `belongs to project ${recorded.project}` : `is not recorded on peer ${dst.peer}`}: there is nothing to promote`,
          'is the server running and reachable from here? check host, port and firewalls',
        ),
      );
      return;
    }
    const tables = dst.catalog.tables.filter((t) => t.mirror === m.name);
    const r = planPromotionWithoutSource(m, recorded, tables, dst, unreachable);
    this.diagnostics.push(...r.diagnostics);
    // An older catalog is migrated first (the promotion record needs migration 6).
    if (r.action) this.actions.add({ ...r.action, depends_on: this.catalog(dst) });
  }

  /** `promote:` declared: the promotion, alone, once the preflight holds (diff/promotion.ts). */
  private promotion(m: Mirror, recorded: CatalogMirror | undefined, src: PeerLive, dst: PeerLive) {
    const at = addr.mirrorAddress(m.name);
    if (!recorded) {
      this.diagnostics.push(
        diag(
          'MR179',
          addr.promotionAddress(m.name),
          `mirror ${m.name} is new: it is promoted by a later apply, once it is copied and Following`,
          'apply this plan, start `mirrors run`, then plan again: the promotion is planned then',
        ),
      );
      return;
    }
    const others = this.actions.list.filter((a) => a.mirror === m.name).map((a) => a.id);
    const drift = this.diagnostics.filter(
      (x) => /^MR15\d$/.test(x.code) && (x.address === at || x.address.startsWith(`${at}.`)),
    );
    const tables = dst.catalog.tables.filter((t) => t.mirror === m.name);
    const r = planPromotion(m, recorded, tables, src, dst, others, drift);
    this.diagnostics.push(...r.diagnostics);
    if (r.action) this.actions.add(r.action);
  }

  private newMirror(m: Mirror, tables: ResolvedTable[], src: PeerLive, dst: PeerLive, catalogDeps: string[]) {
    const pubName = addr.publicationName(m.name);
    const slotName = addr.slotName(m.name);
    if (src.publications[pubName]) {
      this.diagnostics.push(
        diag(
          'MR131',
          addr.publicationAddress(m.name),
          `publication ${pubName} exists on peer ${src.peer} but peer ${dst.peer}'s catalog has no mirror ${m.name}`,
          `if it is a leftover of this mirror, DROP PUBLICATION ${pubName}; on the source; mirrors never takes over objects it did not create`,
        ),
      );
    }
    const existingSlot = src.slots[slotName];
    if (existingSlot) {
      const other =
        existingSlot.database && existingSlot.database !== src.database
          ? ` (for database ${existingSlot.database})`
          : '';
      this.diagnostics.push(
        diag(
          'MR132',
          addr.slotAddress(m.name),
          `replication slot ${slotName} exists on peer ${src.peer}${other} but peer ${dst.peer}'s catalog has no mirror ${m.name}`,
          `if it is a leftover, SELECT pg_drop_replication_slot('${slotName}'); on the source (it retains WAL while it exists)`,
        ),
      );
    }
    const settings = settingsOf(m);
    const mirrorAction = this.actions.add({
      kind: 'mirror',
      op: 'create',
      address: addr.mirrorAddress(m.name),
      peer: dst.peer,
      mirror: m.name,
      reason: `new mirror ${m.source} -> ${m.destination} (${m.mode}, ${plural(tables.length, 'table')})`,
      reason_code: 'new_mirror',
      risk: 'safe',
      before: null,
      after: { source: m.source, destination: m.destination, ...settings },
      depends_on: catalogDeps,
      details: {
        source_peer: m.source,
        destination_peer: m.destination,
        project: this.config.project,
        settings,
        mirror_hash: mirrorHash(this.config, m.name),
        slot: slotName,
        publication: pubName,
      },
    });
    const specs = this.tables(m, tables, src, dst, [mirrorAction.id], m.do_initial_snapshot, null);
    const pub = this.actions.add({
      kind: 'publication',
      op: 'create',
      address: addr.publicationAddress(m.name),
      peer: src.peer,
      mirror: m.name,
      reason: `publish ${plural(specs.specs.length, 'table')} on peer ${src.peer}${relayReason(m.name, specs.relay, specs.relay?.leaves)}`,
      reason_code: 'new_mirror',
      risk: 'safe',
      before: null,
      after: { name: pubName, tables: specs.published.map(pubDisplay), ...relayedAfter(specs.relay) },
      depends_on: [mirrorAction.id],
      details: {
        name: pubName,
        tables: specs.published,
        sql: this.createPublication(pubName, m.name, specs.published, specs.relay),
      },
    });
    const slot = this.actions.add({
      kind: 'slot',
      op: 'create',
      address: addr.slotAddress(m.name),
      peer: src.peer,
      mirror: m.name,
      reason: `logical slot ${slotName} (pgoutput) with an exported snapshot: the mirror's consistent point`,
      reason_code: 'new_mirror',
      risk: 'safe',
      before: null,
      after: { name: slotName, plugin: 'pgoutput' },
      depends_on: [pub.id],
      details: {
        name: slotName,
        create_command: createSlotCommand(slotName, src.serverVersionNum, false),
        tables: 'copy',
      },
    });
    this.bump(this.newSlots, src.peer);
    this.bump(this.newSenders, src.peer);
    const snap = this.snapshot(m, specs.specs, [slot.id, ...specs.tableActionIds], 'initial', 'new_mirror');
    this.postSnapshot(m, specs, snap, 'new_mirror');
  }

  /**
   * Makes `spec` a copy by swap of the existing destination table `dest` (diff/swap-plan.ts); false when there is no
   * plain table to swap (it is created and copied as usual). What the swap cannot carry is MR135.
   */
  private swapSpec(m: Mirror, address: string, spec: TableSpec, dest: LiveTable | undefined): boolean {
    if (!dest?.swap) return false;
    spec.swap = swapPlan(dest, m.name, m.source, dest.hasGuard !== false);
    const refused = swapRefusals(dest, this.live.peers[m.destination].role.name);
    if (refused.length)
      this.diagnostics.push(
        diag(
          'MR135',
          address,
          `resync_strategy swap cannot carry what depends on ${displayQualified(dest)}: ${refused.join('; ')} (dropping the old table would take it away, or refuse)`,
          `drop or move ${refused.length === 1 ? 'it' : 'them'} first and recreate ${refused.length === 1 ? 'it' : 'them'} after the swap, or set resync_strategy: merge (repaired in place) or truncate for this table; nothing is changed until then`,
        ),
      );
    return true;
  }

  private createPublication(name: string, mirror: string, tables: PublishedTable[], relay: RelayPlan | null): string[] {
    return [
      ...(relay ? relaySetupSql(mirror, relay) : []),
      createPublicationSql(name, tables),
      publicationCommentSql(name, mirror),
    ];
  }

  private existingMirror(m: Mirror, tables: ResolvedTable[], src: PeerLive, dst: PeerLive, catalogDeps: string[]) {
    const recorded = dst.catalog.mirrors[m.name];
    const pubName = addr.publicationName(m.name);
    const slotName = addr.slotName(m.name);
    const base = [...catalogDeps];
    const changed = changedSettings(recorded.settings, settingsOf(m));
    if (changed) {
      const u = this.actions.add({
        kind: 'mirror',
        op: 'update',
        address: addr.mirrorAddress(m.name),
        peer: dst.peer,
        mirror: m.name,
        reason: `settings changed: ${Object.keys(changed.after).join(', ')}`,
        reason_code: 'setting_changed',
        risk: 'safe',
        before: changed.before,
        after: changed.after,
        depends_on: catalogDeps,
        details: { settings: settingsOf(m), mirror_hash: mirrorHash(this.config, m.name) },
      });
      base.push(u.id);
    }

    // The slot: missing or past its WAL means the stream cannot resume: new slot, every table copied again.
    const slot = src.slots[slotName];
    const fullResync: 'missing' | 'lost' | null = !slot ? 'missing' : slot.walStatus === 'lost' ? 'lost' : null;
    let slotActionId: string | null = null;
    // Under merge the tables stay readable: each is repaired in place from the new slot's position (tables()).
    const resyncTables = m.resync_strategy === 'merge' ? 'merge' : 'copy';
    const slotCommon = {
      address: addr.slotAddress(m.name),
      peer: src.peer,
      mirror: m.name,
      risk: 'disruptive',
      depends_on: base,
    } as const;
    if (fullResync === 'lost') {
      this.diagnostics.push(
        diag(
          'MR130',
          addr.slotAddress(m.name),
          `slot ${slotName} on peer ${src.peer} lost WAL the mirror had not applied; the mirror needs a full resync`,
          `the plan replaces the slot and ${resyncTables === 'merge' ? 'repairs every table in place from it (resync_strategy merge)' : 'copies every table again'}; raise max_slot_wal_keep_size to avoid this`,
        ),
      );
      slotActionId = this.actions.add({
        ...slotCommon,
        kind: 'slot',
        op: 'replace',
        reason_code: 'slot_lost',
        reason: `the slot lost required WAL (wal_status = lost): drop it, create a new one, ${resyncWords(m)}`,
        before: { wal_status: 'lost' },
        after: { name: slotName, plugin: 'pgoutput' },
        details: {
          name: slotName,
          drop_sql: dropSlotSql(slotName),
          create_command: createSlotCommand(slotName, src.serverVersionNum, false),
          tables: resyncTables,
        },
      }).id;
    } else if (fullResync === 'missing') {
      slotActionId = this.actions.add({
        ...slotCommon,
        kind: 'slot',
        op: 'create',
        reason_code: 'slot_missing',
        reason: `slot ${slotName} is missing on peer ${src.peer}: create it and ${resyncWords(m)}`,
        before: null,
        after: { name: slotName, plugin: 'pgoutput' },
        details: {
          name: slotName,
          create_command: createSlotCommand(slotName, src.serverVersionNum, false),
          tables: resyncTables,
        },
      }).id;
      this.bump(this.newSlots, src.peer);
    }

    const recordedTables = new Map(
      dst.catalog.tables.filter((t) => t.mirror === m.name).map((t) => [tableKey(t.destination), t]),
    );
    const specs = this.tables(
      m,
      tables,
      src,
      dst,
      base,
      true,
      { tables: recordedTables, mirror: recorded },
      fullResync && resyncTables === 'merge' ? slotActionId : null,
    );
    const desiredKeys = new Set(tables.map((t) => tableKey(t.destination)));
    const removed: string[] = [];
    for (const [k, t] of recordedTables) {
      if (desiredKeys.has(k)) continue;
      removed.push(
        this.actions.add({
          kind: 'table',
          op: 'delete',
          address: addr.tableAddress(m.name, t.destination),
          peer: dst.peer,
          mirror: m.name,
          reason: `no longer mapped: stop mirroring ${displayQualified(t.source)}; destination table ${displayQualified(t.destination)} and its rows are kept, and it ${m.keep_read_only ? 'stays read-only (keep_read_only: true)' : 'becomes writable'}`,
          reason_code: 'table_removed',
          risk: 'safe',
          before: { source: displayQualified(t.source) },
          after: null,
          depends_on: base,
          details: {
            destination: t.destination,
            sql: dst.tables[k] && !m.keep_read_only ? [dropGuardSql(t.destination)] : [],
          },
        }).id,
      );
    }

    // The publication: created if missing, its table list set when it differs.
    const pub = src.publications[pubName];
    let pubActionId: string | null = null;
    const pubCommon = {
      address: addr.publicationAddress(m.name),
      peer: src.peer,
      mirror: m.name,
      risk: 'safe',
    } as const;
    if (!pub) {
      pubActionId = this.actions.add({
        ...pubCommon,
        kind: 'publication',
        op: 'create',
        reason_code: 'publication_missing',
        reason: `publication ${pubName} is missing on peer ${src.peer}${relayReason(m.name, specs.relay, specs.relay?.missing)}`,
        before: null,
        after: { name: pubName, tables: specs.published.map(pubDisplay), ...relayedAfter(specs.relay) },
        depends_on: base,
        details: {
          name: pubName,
          tables: specs.published,
          sql: this.createPublication(pubName, m.name, specs.published, specs.relay),
        },
      }).id;
    } else {
      // A column list naming every column is the same as none.
      const shown = (t: PublishedTable) =>
        pubDisplay({ ...t, columns: t.columns && sameColumns(t, src) ? null : t.columns });
      const want = specs.published.map(pubDisplay).sort();
      const have = pub.tables.map(shown).sort();
      const relay = specs.relay;
      const relayGoes = !relay && pub.tables.some((t) => sameQ(t, relayName(m.name)));
      if (JSON.stringify(want) !== JSON.stringify(have) || relay?.missing.length) {
        // The tables whose entry changes (added, removed, another column list) and that still exist to lock.
        const wanted = new Set(want);
        const had = new Set(have);
        const changed = [
          ...specs.published.filter((t) => !had.has(pubDisplay(t))),
          ...pub.tables.filter((t) => !wanted.has(shown(t))),
        ].filter((t, i, all) => src.tables[tableKey(t)] && all.findIndex((x) => tableKey(x) === tableKey(t)) === i);
        const sql = [
          ...(relay ? relaySetupSql(m.name, relay) : []),
          ...lockWritersSql(changed),
          specs.published.length
            ? setPublicationTablesSql(pubName, specs.published)
            : emptyPublicationSql(pubName, pub.tables),
          ...(relayGoes ? dropRelaySql(m.name) : []),
        ];
        const tablesDiffer = JSON.stringify(want) !== JSON.stringify(have);
        const relayed = relay ? relay.leaves.filter((l) => !relay.missing.some((x) => sameQ(x, l))) : [];
        pubActionId = this.actions.add({
          ...pubCommon,
          kind: 'publication',
          op: 'update',
          reason_code: 'publication_changed',
          reason:
            [
              ...(tablesDiffer ? ['published tables or column lists differ'] : []),
              ...(relay?.missing.length ? [relayReason(m.name, relay, relay.missing).slice(2)] : []),
              ...(relayGoes ? ['no partitioned table is left to relay TRUNCATEs of: drop the relay'] : []),
            ].join('; ') +
            (changed.length
              ? `; briefly blocks writers to ${changed.map((t) => displayQualified(t)).join(', ')} (never readers): the change waits for their open transactions, so none is published in part`
              : ''),
          before: { tables: have, ...(relay ? { relayed_partitions: relayed.map(displayQualified) } : {}) },
          after: { tables: want, ...relayedAfter(relay) },
          depends_on: [...base, ...specs.tableActionIds, ...removed],
          details: { name: pubName, tables: specs.published, sql },
        }).id;
      }
    }
    if (slotActionId && pubActionId) this.actions.dependOn(slotActionId, pubActionId);

    const toCopy = specs.specs.filter(
      (s) => (fullResync && resyncTables === 'copy') || specs.needCopy.has(tableKey(s.destination)),
    );
    // Every table again under swap: each into its shadow, swapped in once loaded; readers keep the old rows.
    if (fullResync && m.resync_strategy === 'swap')
      for (const s of toCopy)
        if (!s.swap) this.swapSpec(m, addr.tableAddress(m.name, s.destination), s, dst.tables[tableKey(s.destination)]);
    let snapId: string | null = null;
    if (toCopy.length) {
      const deps = [
        ...(slotActionId ? [slotActionId] : []),
        ...(pubActionId ? [pubActionId] : []),
        ...specs.tableActionIds,
      ];
      const why = fullResync === 'lost' ? 'slot_lost' : fullResync === 'missing' ? 'slot_missing' : 'table_not_copied';
      // A bootstrap without a copy that an earlier apply left unfinished: its tables still start from the slot's
      // consistent point (recorded with the slot), not from a new snapshot's.
      const uncopied = !fullResync && !m.do_initial_snapshot && recorded.phase !== 'ready' && recorded.consistentLsn;
      snapId = this.snapshot(m, toCopy, deps, fullResync ? 'full' : uncopied ? 'initial' : 'tables', why);
    }
    // A mirror whose bootstrap an earlier apply left unfinished is handed over once what remains is done.
    if (snapId || recorded.phase !== 'ready' || fullResync)
      this.postSnapshot(
        m,
        specs,
        snapId,
        snapId ? 'table_not_copied' : fullResync === 'lost' ? 'slot_lost' : fullResync ? 'slot_missing' : 'new_mirror',
      );
  }

  /**
   * A resync of a streaming table by merge: the running worker repairs it in place (worker/merge.ts). Returns the
   * action's id, or null with MR138 when no key is unique on both peers.
   */
  private mergeTable(
    m: Mirror,
    common: { address: string; peer: string; mirror: string },
    rec: CatalogTable,
    t: ResolvedTable,
    spec: TableSpec,
    source: LiveTable,
    dest: LiveTable | undefined,
    deps: string[],
    reason_code: 'replace_requested' | 'table_not_copied',
    why: string,
  ): string | null {
    const key = mergeKey(source, dest);
    if (!key) {
      this.diagnostics.push(
        diag(
          'MR138',
          common.address,
          `${why === '--replace' ? `--replace ${common.address}` : common.address}: resync_strategy merge walks the table by a key unique on both peers, and ${displayQualified(t.destination)} has none that matches the source's`,
          `give the destination table the source's primary key, or set resync_strategy: truncate for mirror ${m.name} to copy it again (readers see it empty meanwhile); nothing is changed until then`,
        ),
      );
      return null;
    }
    return this.actions.add({
      ...common,
      reason_code,
      // No sizes in the reason (a saved plan's reasons must stay comparable): details.spec carries the estimates.
      reason: `repair it in place (${why}, resync_strategy merge): the running worker reads the whole table on the source by (${key.join(', ')}), ${MERGE_CHUNK_ROWS} rows at a time, and updates, inserts and deletes only the rows that differ; readers keep every row, the other tables keep streaming`,
      kind: 'table',
      op: 'replace',
      risk: 'safe',
      ...sourceChange(rec, t),
      depends_on: deps,
      details: { spec, strategy: 'merge', key, chunk_rows: MERGE_CHUNK_ROWS },
    }).id;
  }

  /**
   * Table actions for a mirror: destination tables (and the schemas and types they need), and which tables
   * need a copy. `recorded` is null for a new mirror (every table is new to the stream).
   */
  private tables(
    m: Mirror,
    tables: ResolvedTable[],
    src: PeerLive,
    dst: PeerLive,
    deps: string[],
    copy: boolean,
    recorded: { tables: Map<string, CatalogTable>; mirror: CatalogMirror } | null,
    /** A full resync under resync_strategy merge: the new slot's action, which the tables' merges follow. */
    mergeAfterSlot: string | null = null,
  ) {
    const specs: TableSpec[] = [];
    const published: PublishedTable[] = [];
    const sources: LiveTable[] = [];
    const tableActionIds: string[] = [];
    const needCopy = new Set<string>();
    const created: { t: ResolvedTable; source: LiveTable }[] = [];
    const sourceToDest = new Map(tables.map((t) => [tableKey(t.source), t.destination]));
    const publication = src.publications[addr.publicationName(m.name)];
    const publishedBySource = new Map((publication?.tables ?? []).map((p) => [tableKey(p), p]));
    for (const t of tables) {
      const key = tableKey(t.destination);
      const rec = recorded?.tables.get(key);
      const dest = dst.tables[key];
      const ready = rec && streamsAsMapped(rec, t) ? readyTable(m, t, rec) : null;
      const sourceKey = tableKey(t.source);
      if (ready && !src.tables[sourceKey] && !src.otherRelations?.[sourceKey]) {
        // MR157, not MR110: the table was streaming, so its source went away rather than never existing.
        this.diagnostics.push(sourceGone(ready, dest, unmappedPublished(publication, tables, recorded), t.pos));
        continue;
      }
      const checked = checkSourceTable(src, t);
      this.diagnostics.push(...checked.diagnostics);
      const source = checked.table;
      if (!source) continue;
      const spec = tableSpec(t, source);
      specs.push(spec);
      sources.push(source);
      published.push({
        schema: t.source.schema,
        name: t.source.name,
        columns: t.excludeColumns.length
          ? source.columns.filter((c) => !t.excludeColumns.includes(c.name) && c.generated === '').map((c) => c.name)
          : null,
      });

      const common = { address: addr.tableAddress(m.name, t.destination), peer: dst.peer, mirror: m.name } as const;
      if (rec) {
        const sourceChanged = tableKey(rec.source) !== tableKey(t.source);
        const excludesChanged =
          JSON.stringify([...rec.excludeColumns].sort()) !== JSON.stringify([...t.excludeColumns].sort());
        // Copied again: its source or excluded columns changed, or --replace asks (marked used either way).
        const requested = this.replaceRequested(m.name, common.address);
        const again =
          sourceChanged || excludesChanged
            ? ({
                reason_code: 'table_source_changed',
                reason: sourceChanged
                  ? `source changed from ${displayQualified(rec.source)} to ${displayQualified(t.source)}: copy it again`
                  : 'exclude_columns changed: copy the table again',
              } as const)
            : requested
              ? ({
                  reason_code: 'replace_requested',
                  reason:
                    'copy it again (--replace) while the mirror streams its other tables: readers see it empty until the copy ends (resync_strategy truncate)',
                } as const)
              : null;
        if (again?.reason_code === 'replace_requested' && m.resync_strategy === 'merge' && ready) {
          // Nothing is emptied or copied by the plan: the running worker repairs the table in place.
          const id = this.mergeTable(m, common, rec, t, spec, source, dest, deps, 'replace_requested', '--replace');
          if (id) tableActionIds.push(id);
          continue;
        }
        if (
          again?.reason_code === 'replace_requested' &&
          m.resync_strategy === 'swap' &&
          this.swapSpec(m, common.address, spec, dest)
        ) {
          tableActionIds.push(
            this.actions.add({
              ...common,
              reason_code: 'replace_requested',
              reason: `copy it again (--replace) into ${displayQualified(spec.swap!.shadow)} and swap that in while the mirror streams its other tables: readers see the old rows until the swap, then the new ones (resync_strategy swap; carries ${carriedSummary(spec.swap!)})`,
              kind: 'table',
              op: 'replace',
              risk: 'safe',
              ...sourceChange(rec, t),
              depends_on: deps,
              details: { spec, strategy: 'swap' },
            }).id,
          );
          needCopy.add(key);
          continue;
        }
        if (again) {
          tableActionIds.push(
            this.actions.add({
              ...common,
              ...again,
              kind: 'table',
              op: 'replace',
              risk: 'disruptive',
              ...sourceChange(rec, t),
              depends_on: deps,
              details: { spec, strategy: 'truncate' },
            }).id,
          );
          needCopy.add(key);
          if (dest && again.reason_code === 'table_source_changed')
            this.diagnostics.push(...checkExistingDestination(dest, source, t, false));
          continue;
        }
        const update = {
          ...common,
          kind: 'table',
          op: 'update',
          reason_code: 'table_changed',
          risk: 'safe',
          depends_on: deps,
        } as const;
        if ((rec.partitionKey ?? null) !== t.partitionKey) {
          tableActionIds.push(
            this.actions.add({
              ...update,
              reason: 'partition_key changed (used by the next copy of this table)',
              before: { partition_key: rec.partitionKey },
              after: { partition_key: t.partitionKey },
              details: { spec, sql: [] },
            }).id,
          );
        }
        if (ready) {
          const entry = publishedBySource.get(sourceKey);
          const published = entry ? { publication: publication!.name, columns: entry.columns } : undefined;
          const drift = tableDrift(ready, source, dest, published);
          const schema = planSchemaChange(m, rec, source, dest, spec, drift, deps);
          this.diagnostics.push(...schema.diagnostics);
          if (schema.action) {
            tableActionIds.push(this.actions.add(schema.action).id);
            if (schema.copy) needCopy.add(key);
          }
          const verified = verifyDiagnostic(m.name, rec);
          if (verified) this.diagnostics.push(verified);
        }
        if (dest && dest.hasGuard === false) {
          tableActionIds.push(
            this.actions.add({
              ...update,
              reason: 'add the read-only guard: writes by anyone but the worker fail with MIRROR_READ_ONLY',
              before: { read_only: false },
              after: { read_only: true },
              details: { spec, sql: [createGuardSql(t.destination, m.name, m.source)] },
            }).id,
          );
        }
        if (dest?.hasGuard && dest.guardState && dest.guardState !== 'enabled') {
          // A disabled guard refuses no one; ENABLE REPLICA or ALWAYS would refuse the worker itself.
          tableActionIds.push(
            this.actions.add({
              ...update,
              reason: `enable the read-only guard (it is ${dest.guardState}): writes by anyone but the worker fail with MIRROR_READ_ONLY`,
              before: { read_only: false },
              after: { read_only: true },
              details: { spec, sql: [enableGuardSql(t.destination)] },
            }).id,
          );
        }
        if (mergeAfterSlot || !copiedSinceSlot(rec, recorded!.mirror)) {
          // A full resync, or one an earlier apply left unfinished: merged in place, or copied (into a shadow that is
          // then swapped in, under swap).
          if (m.resync_strategy !== 'merge') {
            needCopy.add(key);
            if (m.resync_strategy === 'swap') this.swapSpec(m, common.address, spec, dest);
          } else {
            const after = [...deps, ...(mergeAfterSlot ? [mergeAfterSlot] : [])];
            const id = this.mergeTable(m, common, rec, t, spec, source, dest, after, 'table_not_copied', 'new slot');
            if (id) tableActionIds.push(id);
          }
        }
        continue;
      }
      // A table new to the stream.
      if (copy) needCopy.add(key);
      const createDeps = dest ? [] : [...this.schema(dst, t.destination.schema), ...this.typesFor(source, src, dst)];
      if (dest) this.diagnostics.push(...checkExistingDestination(dest, source, t, copy));
      else created.push({ t, source });
      const what = dest
        ? `mirror ${displayQualified(t.source)} into the existing ${displayQualified(t.destination)} (columns fit)`
        : `create ${displayQualified(t.destination)} ${sameQ(t.source, t.destination) ? 'as on the source' : `from ${displayQualified(t.source)}`}` +
          (t.excludeColumns.length ? `, without ${t.excludeColumns.join(', ')}` : '');
      tableActionIds.push(
        this.actions.add({
          ...common,
          kind: 'table',
          op: 'create',
          reason_code: 'table_added',
          risk: 'safe',
          reason: `${what}; read-only (MIRROR_READ_ONLY) until promotion`,
          before: null,
          after: {
            source: displayQualified(t.source),
            columns: spec.columns.length,
            key: spec.primary_key,
            exclude_columns: t.excludeColumns,
          },
          depends_on: [...deps, ...createDeps],
          details: {
            spec,
            create_table: !dest,
            sql: [
              ...(dest ? [] : [createTableSql(source, t.destination, t.excludeColumns)]),
              // As on the tables mirrors creates: values come from the source, and the worker's INSERT and UPDATE
              // of a GENERATED ALWAYS identity column would fail. The promotion restores what the source has.
              ...(dest?.columns ?? [])
                .filter((c) => c.identity === 'a')
                .map(
                  (c) =>
                    `ALTER TABLE ${quoteQualified(t.destination.schema, t.destination.name)} ALTER COLUMN ${quoteIdent(c.name)} SET GENERATED BY DEFAULT`,
                ),
              ...(dest?.hasGuard ? [] : [createGuardSql(t.destination, m.name, m.source)]),
            ],
          },
        }).id,
      );
    }
    // A TRUNCATE of one partition reaches the destination through the relay, which the publication carries.
    const relay = relayPlan(m.name, sources);
    if (relay) published.push({ ...relayName(m.name), columns: null });
    return { specs, published, tableActionIds, needCopy, created, sourceToDest, relay };
  }

  /** Schema, type and extension actions a new destination table needs, in dependency order. */
  private typesFor(source: LiveTable, src: PeerLive, dst: PeerLive): string[] {
    const ids: string[] = [];
    const visit = (key: string | undefined): string | null => {
      if (!key) return null;
      const t = src.types[key];
      if (!t) return null;
      if (t.extension) {
        if (dst.extensions.installed.includes(t.extension)) return null;
        if (!dst.extensions.available.includes(t.extension)) {
          this.diagnostics.push(
            diag(
              'MR124',
              addr.extensionAddress(dst.peer, t.extension),
              `type ${displayQualified(t)} comes from extension ${t.extension}, which peer ${dst.peer} does not have`,
              `install the ${t.extension} extension's package on the destination server`,
            ),
          );
          return null;
        }
        return this.actions.add({
          kind: 'extension',
          op: 'create',
          address: addr.extensionAddress(dst.peer, t.extension),
          peer: dst.peer,
          mirror: null,
          reason: `type ${displayQualified(t)} needs extension ${t.extension}`,
          reason_code: 'extension_missing',
          risk: 'safe',
          before: null,
          after: { extension: t.extension },
          depends_on: [],
          details: { sql: [createExtensionSql(t.extension)] },
        }).id;
      }
      if (dst.types[key]) return null;
      const inner = [visit(t.baseUserType), ...(t.attributes ?? []).map((a) => visit(a.userType))].filter(
        (x): x is string => !!x,
      );
      return this.actions.add({
        kind: 'type',
        op: 'create',
        address: addr.typeAddress(dst.peer, t),
        peer: dst.peer,
        mirror: null,
        reason: `${t.kind} type used by mirrored columns`,
        reason_code: 'type_missing',
        risk: 'safe',
        before: null,
        after: { kind: t.kind, ...(t.labels ? { labels: t.labels } : {}) },
        depends_on: [...this.schema(dst, t.schema), ...inner],
        details: { sql: [createTypeSql(t)] },
      }).id;
    };
    for (const c of source.columns) {
      const id = visit(c.userType);
      if (id && !ids.includes(id)) ids.push(id);
    }
    return ids;
  }

  private snapshot(
    m: Mirror,
    specs: TableSpec[],
    deps: string[],
    kind: SnapshotDetails['kind'],
    why: ReasonCode,
  ): string {
    const copy = kind !== 'initial' || m.do_initial_snapshot;
    const rows = specs.reduce((n, s) => n + BigInt(s.estimated_rows === '-1' ? '0' : s.estimated_rows), 0n);
    const bytes = specs.reduce((n, s) => n + BigInt(s.size_bytes), 0n);
    // No sizes in the reason: they move with every write, and a saved plan's reasons must stay comparable.
    const reason = !copy
      ? "do_initial_snapshot is false: tables start from the slot's consistent point without a copy"
      : kind === 'tables'
        ? `copy ${plural(specs.length, 'table')} in a new snapshot of their own (temporary slot), then stream them from it`
        : `copy ${plural(specs.length, 'table')} at the slot's consistent point, ${m.snapshot_num_tables_in_parallel} tables at a time`;
    if (kind === 'tables') this.bump(this.newSlots, m.source);
    return this.actions.add({
      kind: 'snapshot',
      op: 'create',
      address: addr.snapshotAddress(m.name),
      peer: m.destination,
      mirror: m.name,
      reason,
      reason_code: why,
      risk: kind === 'full' ? 'disruptive' : 'safe',
      before: null,
      after: {
        tables: specs.map((s) => displayQualified(s.destination)),
        estimated_rows: rows.toString(),
        estimated_bytes: bytes.toString(),
      },
      depends_on: deps,
      details: {
        kind,
        copy,
        tables: specs,
        parallelism: {
          tables_in_parallel: m.snapshot_num_tables_in_parallel,
          max_workers: m.snapshot_max_parallel_workers,
          rows_per_partition: m.snapshot_num_rows_per_partition,
        },
      },
    }).id;
  }

  /** Indexes and foreign keys of tables mirrors created, after their data; then the hand-over to `run`. */
  private postSnapshot(m: Mirror, specs: TablesResult, snapId: string | null, why: ReasonCode) {
    const after: string[] = [];
    const deps = snapId ? [snapId] : [];
    const indexIds = new Map<string, string>();
    const common = {
      peer: m.destination,
      mirror: m.name,
      reason_code: 'table_added',
      risk: 'safe',
      before: null,
    } as const;
    if (m.replicate_indexes) {
      for (const { t, source } of specs.created) {
        const key = keyColumns(source).join('\u0000');
        const sql = source.indexes
          .filter(
            (i) => !i.primary && !(i.unique && i.columns.join('\u0000') === key && source.replicaIdentity === 'i'),
          )
          .filter((i) => !indexUsesColumns(i, t.excludeColumns))
          .map((i) => createIndexSql(i, t.destination))
          .filter((s): s is string => !!s);
        if (!sql.length) continue;
        const a = this.actions.add({
          ...common,
          kind: 'indexes',
          op: 'create',
          address: addr.indexesAddress(m.name, t.destination),
          reason: `${sql.length} secondary ${sql.length === 1 ? 'index' : 'indexes'}, built after the copy`,
          after: { count: sql.length },
          depends_on: deps,
          details: { sql },
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
        after.push(
          this.actions.add({
            ...common,
            kind: 'foreign_keys',
            op: 'create',
            address: addr.foreignKeysAddress(m.name, t.destination),
            reason: `${plural(sql.length, 'foreign key')} to mirrored tables`,
            after: { count: sql.length },
            depends_on: [...fkDeps],
            details: { sql },
          }).id,
        );
      }
    }
    const mirrorActions = this.actions.list.filter((a) => a.mirror === m.name && a.kind !== 'stream').map((a) => a.id);
    this.actions.add({
      ...common,
      kind: 'stream',
      op: 'create',
      address: addr.streamAddress(m.name),
      reason_code: why,
      // `mirrors run` reads its configuration when it starts: a new mirror needs a run started (or restarted) after
      // this file's change; a mirror it already streams resumes by itself.
      reason:
        why === 'new_mirror'
          ? 'mark the mirror bootstrapped: `mirrors run` streams it from its consistent point (a `mirrors run` started before this configuration must be restarted to stream a new mirror)'
          : 'mark the mirror bootstrapped again: `mirrors run` resumes streaming it',
      after: null,
      depends_on: [...deps, ...after, ...mirrorActions],
      details: {},
    });
  }

  /** Mirrors of this project in an inspected destination's catalog that the config no longer declares. */
  destroyRemoved(selected: string[] | null): PlannedMirror[] {
    const out: PlannedMirror[] = [];
    for (const [peer, dst] of Object.entries(this.live.peers).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (this.config.peers[peer] === undefined) continue;
      for (const rec of Object.values(dst.catalog.mirrors).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        if (this.config.mirrors[rec.name]) continue;
        if (selected && !selected.includes(rec.name)) continue;
        const at = addr.mirrorAddress(rec.name);
        if (rec.project !== this.config.project) {
          this.diagnostics.push(
            diag(
              'MR146',
              at,
              `mirror ${rec.name} on peer ${peer} belongs to project ${rec.project}; this file (project ${this.config.project}) leaves it alone`,
              'nothing to do: the mirrors.yaml of that project manages it',
            ),
          );
          continue;
        }
        if (rec.settings.prevent_destroy === true) {
          this.diagnostics.push(
            diag(
              'MR136',
              at,
              `mirror ${rec.name} on peer ${peer} is not in the config, and it has prevent_destroy: the plan would destroy it`,
              `declare it again, or apply prevent_destroy: false for it first and then remove it`,
            ),
          );
          continue;
        }
        if (!this.config.projectDeclared) {
          this.diagnostics.push(
            diag(
              'MR147',
              at,
              `mirror ${rec.name} on peer ${peer} is not declared in this file; this file sets no \`project:\`, so it destroys no mirror (every file without one is project default, and it may be another file's)`,
              'if this file manages it and it is to be destroyed, add `project: default` to the file; if another file manages it, give each file its own `project:` name',
            ),
          );
          continue;
        }
        out.push({ name: rec.name, source: rec.sourcePeer, destination: peer });
        this.destroy(rec.name, rec.sourcePeer, peer);
      }
    }
    return out;
  }

  private destroy(name: string, sourcePeer: string, destPeer: string) {
    const src = this.live.peers[sourcePeer];
    const mirrorDeps: string[] = [];
    if (!this.config.peers[sourcePeer] || !src) {
      this.diagnostics.push(
        diag(
          'MR142',
          addr.mirrorAddress(name),
          `mirror ${name} was removed from the config, and so was its source peer ${sourcePeer}: its slot and publication cannot be dropped`,
          `keep peer ${sourcePeer} declared until this destroy is applied`,
        ),
      );
      return;
    }
    const slotName = addr.slotName(name);
    const pubName = addr.publicationName(name);
    const slot = src.slots[slotName];
    const common = { peer: sourcePeer, mirror: name, reason_code: 'mirror_removed', after: null } as const;
    if (slot) {
      if (slot.active) {
        this.diagnostics.push(
          diag(
            'MR134',
            addr.slotAddress(name),
            `slot ${slotName} is in use (pid ${slot.activePid}) by a running worker`,
            `restart \`mirrors run\` with this configuration (it then no longer streams ${name}), or stop it, before applying: apply refuses to drop an active slot`,
          ),
        );
      }
      mirrorDeps.push(
        this.actions.add({
          ...common,
          kind: 'slot',
          op: 'delete',
          address: addr.slotAddress(name),
          risk: 'irreversible',
          reason: `mirror ${name} was removed from the config: drop its slot (releases retained WAL; its position is lost)`,
          before: { name: slotName, retained_bytes: slot.retainedBytes },
          depends_on: [],
          details: { name: slotName, drop_sql: dropSlotSql(slotName) },
        }).id,
      );
    }
    if (src.publications[pubName]) {
      mirrorDeps.push(
        this.actions.add({
          ...common,
          kind: 'publication',
          op: 'delete',
          address: addr.publicationAddress(name),
          risk: 'safe',
          reason: `mirror ${name} was removed from the config: drop its publication`,
          before: { name: pubName },
          depends_on: [...mirrorDeps],
          details: {
            name: pubName,
            sql: [
              dropPublicationSql(pubName),
              ...(src.publications[pubName].tables.some((t) => sameQ(t, relayName(name))) ? dropRelaySql(name) : []),
            ],
          },
        }).id,
      );
    }
    const dst = this.live.peers[destPeer];
    const tables = dst.catalog.tables.filter((t) => t.mirror === name);
    const present = tables.filter((t) => dst.tables[tableKey(t.destination)]);
    const kept = tables.length ? ` (${tables.map((t) => displayQualified(t.destination)).join(', ')})` : '';
    // The reverse mirror of a promotion: its destination is the old source, which must not become writable beside
    // the new primary (its sequences are behind): it gets the promotion's fence back instead.
    const forward = reverseForward(name, src);
    const fenced = present.map((t) => ({ source: t.destination, destination: t.source }));
    this.actions.add({
      ...common,
      kind: 'mirror',
      op: 'delete',
      address: addr.mirrorAddress(name),
      peer: destPeer,
      risk: 'irreversible',
      reason: forward
        ? `mirror ${name} is no longer declared (\`reverse: true\` left mirror ${forward}): forget it; the old source's tables${kept} keep their rows and get the promotion's fence back (MIRROR_FENCED): they do not become writable beside the new primary, peer ${sourcePeer}`
        : `mirror ${name} was removed from the config: forget it; destination tables${kept} and their rows are kept, and become writable`,
      before: { source: sourcePeer, tables: tables.length },
      depends_on: mirrorDeps,
      details: {
        kept_tables: tables.map((t) => t.destination),
        sql: forward
          ? [
              ...unfenceSql(fenced),
              ...fenceSql(forward, sourcePeer, fenced).filter((q) => !q.startsWith('LOCK TABLE')),
              ...present.map((t) => dropGuardSql(t.destination)),
            ]
          : present.map((t) => dropGuardSql(t.destination)),
      },
    });
  }
}

/**
 * The promoted mirror whose promotion created mirror `name` as its reverse mirror (recorded on the new primary,
 * the reverse mirror's source), or null.
 */
function reverseForward(name: string, src: PeerLive): string | null {
  if (!name.endsWith(REVERSE_SUFFIX)) return null;
  const forward = src.catalog.mirrors[name.slice(0, -REVERSE_SUFFIX.length)];
  return forward?.promotedAt && forward.promotion?.reverse ? forward.name : null;
}

function tableSpec(t: ResolvedTable, source: LiveTable): TableSpec {
  return {
    source: t.source,
    destination: t.destination,
    columns: copiedColumns(source, t.excludeColumns).map((c) => ({ name: c.name, type: c.type, not_null: c.notNull })),
    primary_key: keyColumns(source),
    exclude_columns: t.excludeColumns,
    partition_key: t.partitionKey,
    estimated_rows: source.estimatedRows,
    size_bytes: source.sizeBytes,
  };
}

/**
 * A table is streamed only once it was copied in an export at or after its mirror's slot was created: a
 * `ready` table whose snapshot LSN is older than the slot's consistent point was copied for a slot that is
 * gone (a full resync that stopped before reaching it), and is copied again.
 */
/** A table replace's before and after: where it is copied from, and what it leaves out. */
function sourceChange(rec: CatalogTable, t: ResolvedTable) {
  return {
    before: { source: displayQualified(rec.source), exclude_columns: rec.excludeColumns },
    after: { source: displayQualified(t.source), exclude_columns: t.excludeColumns },
  };
}

function copiedSinceSlot(t: CatalogTable, m: CatalogMirror): boolean {
  if (t.state !== 'ready' || t.snapshotLsn === null) return false;
  return m.consistentLsn === null || lsnToBigInt(t.snapshotLsn) >= lsnToBigInt(m.consistentLsn);
}

/** A recorded table that streams as the config maps it: `ready`, same source, same excluded columns. */
function streamsAsMapped(rec: CatalogTable, t: ResolvedTable): boolean {
  return (
    rec.state === 'ready' &&
    sameQ(rec.source, t.source) &&
    rec.excludeColumns.length === t.excludeColumns.length &&
    rec.excludeColumns.every((c) => t.excludeColumns.includes(c))
  );
}

function readyTable(m: Mirror, t: ResolvedTable, rec: CatalogTable): ReadyTable {
  return {
    mirror: m.name,
    sourcePeer: m.source,
    destinationPeer: m.destination,
    source: t.source,
    destination: t.destination,
    excludeColumns: t.excludeColumns,
    keptColumns: rec.keptColumns,
  };
}

/** Tables the mirror's publication holds that neither a mapping nor the catalog names: where a renamed source went. */
function unmappedPublished(
  publication: LivePublication | undefined,
  tables: ResolvedTable[],
  recorded: { tables: Map<string, CatalogTable> } | null,
): QualifiedName[] {
  const known = new Set([
    ...tables.map((t) => tableKey(t.source)),
    ...[...(recorded?.tables.values() ?? [])].map((t) => tableKey(t.source)),
  ]);
  return (publication?.tables ?? [])
    .filter((p) => !known.has(tableKey(p)) && p.schema !== RELAY_SCHEMA)
    .map((p) => ({ schema: p.schema, name: p.name }));
}

/** The reason's words for the relay triggers a publication change creates on `leaves` ('' for none). */
function relayReason(mirror: string, relay: RelayPlan | null, leaves: QualifiedName[] | undefined): string {
  if (!relay || !leaves?.length) return '';
  const shown = leaves.slice(0, 5).map(displayQualified).join(', ') + (leaves.length > 5 ? `, ...` : '');
  return `; relay a TRUNCATE of ${plural(leaves.length, 'partition')} alone (${shown}): trigger ${relayTrigger(mirror)} on each, briefly blocking its writers`;
}

function relayedAfter(relay: RelayPlan | null): { relayed_partitions?: string[] } {
  return relay ? { relayed_partitions: relay.leaves.map(displayQualified) } : {};
}

/** What a full resync does with the tables, for the slot action's reason. */
function resyncWords(m: Mirror): string {
  if (m.resync_strategy === 'merge') return 'repair every table in place from it (resync_strategy merge)';
  if (m.resync_strategy === 'swap')
    return 'copy every table again, each into a shadow table swapped in once loaded (resync_strategy swap: readers keep the old rows until then)';
  return 'copy every table again';
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
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
  const all = live.columns
    .filter((c) => c.generated === '')
    .map((c) => c.name)
    .sort();
  return JSON.stringify(all) === JSON.stringify([...t.columns].sort());
}
