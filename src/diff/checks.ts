/**
 * Preflight checks: what would make applying or streaming a mirror fail, found before anything is
 * changed. Pure: reads Config and Live, returns Diagnostics.
 */
import { displayIdent, displayQualified, tableKey, type QualifiedName } from '../config/names.js';
import type { Mirror } from '../config/types.js';
import type { Live, LiveOtherRelation, LiveTable, PeerLive } from '../inspect/types.js';
import { relayPlan } from './truncate-relay.js';
import { diag } from '../plan/diagnostics.js';
import type { Action, Diagnostic } from '../plan/types.js';
import { mirrorAddress, peerAddress, tableAddress, typeAddress } from '../plan/address.js';
import { copiedColumns, keyColumns } from './ddl.js';
import type { ResolvedTable } from '../inspect/resolve.js';

const list = (xs: string[]) => xs.map(displayIdent).join(', ');

/** Settings and privileges of a source peer, given what the plan will add to it. */
export function checkSourcePeer(
  src: PeerLive,
  mirrors: Mirror[],
  newSlots: number,
  newWalSenders: number,
  allSyncMirrorsOfSource: number,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at = peerAddress(src.peer);
  const names = mirrors.map((m) => m.name).join(', ');
  if (src.serverVersionNum < 130000) {
    out.push(
      diag(
        'MR108',
        at,
        `peer ${src.peer} runs PostgreSQL ${src.serverVersion}; mirrors needs 13 or later on a source`,
        'upgrade the source, or mirror from a newer replica',
      ),
    );
  }
  if (src.settings.wal_level !== 'logical') {
    out.push(
      diag(
        'MR101',
        at,
        `wal_level is ${src.settings.wal_level} on peer ${src.peer}; logical decoding needs logical`,
        `ALTER SYSTEM SET wal_level = logical; then restart the source server`,
      ),
    );
  }
  const freeSlots = src.settings.max_replication_slots - src.slotsInUse;
  if (newSlots > freeSlots) {
    out.push(
      diag(
        'MR102',
        at,
        `max_replication_slots is ${src.settings.max_replication_slots} with ${src.slotsInUse} in use; the plan needs ${newSlots} more`,
        `ALTER SYSTEM SET max_replication_slots = ${src.slotsInUse + newSlots + 2}; then restart the source`,
      ),
    );
  }
  const freeSenders = src.settings.max_wal_senders - src.walSendersInUse;
  if (newWalSenders > freeSenders) {
    out.push(
      diag(
        'MR103',
        at,
        `max_wal_senders is ${src.settings.max_wal_senders} with ${src.walSendersInUse} in use; the mirrors need ${newWalSenders} more`,
        `ALTER SYSTEM SET max_wal_senders = ${src.walSendersInUse + newWalSenders + 2}; then restart the source`,
      ),
    );
  }
  if (!src.role.superuser && !src.role.replication) {
    out.push(
      diag(
        'MR104',
        at,
        `role ${src.role.name} on peer ${src.peer} has no REPLICATION privilege (needed by ${names})`,
        `ALTER ROLE ${displayIdent(src.role.name)} WITH REPLICATION;`,
      ),
    );
  }
  if (src.settings.max_slot_wal_keep_size === -1) {
    out.push(
      diag(
        'MR105',
        at,
        `max_slot_wal_keep_size is unlimited on peer ${src.peer}: a stopped mirror keeps WAL until the source's disk is full`,
        `ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf();`,
      ),
    );
  }
  // ANY k over n sync mirrors: with k >= n, one mirror down stops the commits that wait, unless the degrade policy
  // takes it out.
  for (const m of mirrors) {
    if (m.mode !== 'sync' || m.on_sync_loss !== 'block' || m.sync_quorum < allSyncMirrorsOfSource) continue;
    out.push(
      diag(
        'MR106',
        mirrorAddress(m.name),
        allSyncMirrorsOfSource === 1
          ? `mirror ${m.name} would be the only synchronous standby of peer ${src.peer}, with on_sync_loss: block: every commit that waits for synchronous replication stops while it is down`
          : `mirror ${m.name} is one of ${allSyncMirrorsOfSource} sync mirrors of peer ${src.peer} and sync_quorum ${m.sync_quorum} needs all of them, with on_sync_loss: block: every commit that waits for synchronous replication stops while it is down`,
        allSyncMirrorsOfSource === 1
          ? 'declare a second sync mirror (sync_quorum: 1 then waits for either), or `on_sync_loss: { degrade_after: 10s }` to let commits go on without it after that long; keep `block` only if no commit may ever return before it is mirrored'
          : 'lower sync_quorum below the number of sync mirrors, or `on_sync_loss: { degrade_after: 10s }`',
      ),
    );
  }
  return out;
}

/** A mapped source table: present, readable, with a replica identity that survives the column list. */
export function checkSourceTable(src: PeerLive, t: ResolvedTable): { table?: LiveTable; diagnostics: Diagnostic[] } {
  const at = tableAddress(t.mirror, t.destination);
  const name = displayQualified(t.source);
  const table = src.tables[`${t.source.schema}\u0000${t.source.name}`];
  const other = table ? undefined : src.otherRelations?.[`${t.source.schema}\u0000${t.source.name}`];
  if (other) return { diagnostics: [unpublishable(src, at, name, other)] };
  if (!table) {
    return {
      diagnostics: [
        diag(
          'MR110',
          at,
          `source table ${name} does not exist on peer ${src.peer}`,
          `create it on the source, or fix source_table at ${t.pos.file}:${t.pos.line}:${t.pos.col}`,
        ),
      ],
    };
  }
  const out: Diagnostic[] = [];
  const role = displayIdent(src.role.name);
  if (src.schemas?.[t.source.schema]?.usage === false) {
    out.push(
      diag(
        'MR116',
        at,
        `role ${src.role.name} has no USAGE on schema ${displayIdent(t.source.schema)} on peer ${src.peer}, so it can neither read nor publish ${name}`,
        `GRANT USAGE ON SCHEMA ${displayIdent(t.source.schema)} TO ${role};`,
      ),
    );
  }
  if (!table.canSelect) {
    out.push(diag('MR116', at, `role ${src.role.name} cannot SELECT ${name}`, `GRANT SELECT ON ${name} TO ${role};`));
  }
  if (table.persistence === 'u') {
    out.push(
      diag(
        'MR118',
        at,
        `${name} is UNLOGGED: logical decoding never sees its changes, so the mirror would stay as the snapshot left it`,
        `ALTER TABLE ${name} SET LOGGED; (rewrites the table), or remove it from the mirror`,
      ),
    );
  }
  const unreadable: string[] = [];
  for (const leaf of table.leafProblems ?? []) {
    const leafName = displayQualified(leaf);
    if (leaf.kind === 'f') {
      out.push(
        diag(
          'MR119',
          at,
          `${name} has a foreign-table partition ${leafName}: its rows live on another server and no change to them is ever decoded`,
          `detach it (ALTER TABLE ${name} DETACH PARTITION ${leafName}), or mirror the server that holds it`,
        ),
      );
    } else if (leaf.persistence === 'u') {
      out.push(
        diag(
          'MR118',
          at,
          `partition ${leafName} of ${name} is UNLOGGED: logical decoding never sees its changes`,
          `ALTER TABLE ${leafName} SET LOGGED;`,
        ),
      );
    }
    if (!leaf.canSelect && leaf.kind !== 'f') unreadable.push(leafName);
  }
  if (unreadable.length) {
    // The snapshot reads each leaf partition directly: a grant on the parent does not cover them.
    out.push(
      diag(
        'MR116',
        at,
        `role ${src.role.name} cannot SELECT partition${unreadable.length === 1 ? '' : 's'} ${unreadable.join(', ')} of ${name} (the snapshot reads each partition)`,
        unreadable.map((l) => `GRANT SELECT ON ${l} TO ${role};`).join(' '),
      ),
    );
  }
  const colNames = new Set(table.columns.map((c) => c.name));
  const unknown = [...t.excludeColumns, ...(t.partitionKey ? [t.partitionKey] : [])].filter((c) => !colNames.has(c));
  if (unknown.length) {
    out.push(
      diag(
        'MR113',
        at,
        `${name} has no column ${list(unknown)}`,
        `column names are exact and case-sensitive; the table has ${list(table.columns.map((c) => c.name))}`,
      ),
    );
  }
  if (t.excludeColumns.length && src.serverVersionNum < 150000) {
    out.push(
      diag(
        'MR115',
        at,
        `exclude_columns on ${name} needs publication column lists (PostgreSQL 15+); peer ${src.peer} runs ${src.serverVersion}`,
        'remove exclude_columns or upgrade the source',
      ),
    );
  }
  if (table.replicaIdentity === 'n' || (table.replicaIdentity === 'd' && !table.primaryKey)) {
    out.push(
      diag(
        'MR111',
        at,
        `${name} has no primary key and replica identity ${table.replicaIdentity === 'n' ? 'NOTHING' : 'DEFAULT'}: once published, UPDATE and DELETE on it fail on the source`,
        `add a primary key, or ALTER TABLE ${name} REPLICA IDENTITY USING INDEX <unique index> (or FULL)`,
      ),
    );
  } else if (table.replicaIdentity === 'd' && table.primaryKey?.deferrable) {
    out.push(
      diag(
        'MR114',
        at,
        `${name}'s primary key ${displayIdent(table.primaryKey.name)} is DEFERRABLE and cannot serve as replica identity`,
        `make it NOT DEFERRABLE, or ALTER TABLE ${name} REPLICA IDENTITY USING INDEX <unique non-deferrable index>`,
      ),
    );
  }
  const key = keyColumns(table);
  const excludedKey = t.excludeColumns.filter((c) => key.includes(c));
  if (excludedKey.length) {
    out.push(
      diag(
        'MR112',
        at,
        `${name}: excluded column ${list(excludedKey)} is part of the replica identity`,
        'the key must be published: remove it from exclude_columns',
      ),
    );
  } else if (table.replicaIdentity === 'f' && t.excludeColumns.some((c) => colNames.has(c))) {
    out.push(
      diag(
        'MR112',
        at,
        `${name} has REPLICA IDENTITY FULL, which needs every column published`,
        'remove exclude_columns, or give the table a primary key',
      ),
    );
  }
  return { table, diagnostics: out };
}

/** An existing destination table must take every copied column and have the key the stream applies by. */
export function checkExistingDestination(
  dest: LiveTable,
  source: LiveTable,
  t: ResolvedTable,
  snapshotPlanned: boolean,
): Diagnostic[] {
  const at = tableAddress(t.mirror, t.destination);
  const name = displayQualified(t.destination);
  const out: Diagnostic[] = [];
  const destCols = new Map(dest.columns.map((c) => [c.name, c]));
  const problems: string[] = [];
  for (const c of copiedColumns(source, t.excludeColumns)) {
    const d = destCols.get(c.name);
    if (!d) problems.push(`column ${displayIdent(c.name)} is missing`);
    else if (d.type !== c.type) problems.push(`column ${displayIdent(c.name)} is ${d.type}, the source has ${c.type}`);
  }
  const copied = new Set(source.columns.map((c) => c.name));
  for (const d of dest.columns) {
    if (copied.has(d.name) && !t.excludeColumns.includes(d.name)) continue;
    if (d.notNull && !d.hasDefault && d.identity === '' && d.generated === '') {
      if (t.excludeColumns.includes(d.name)) {
        out.push(
          diag(
            'MR121',
            at,
            `${name}.${displayIdent(d.name)} is excluded but NOT NULL without a default on the destination: inserts would fail`,
            `ALTER TABLE ${name} ALTER COLUMN ${displayIdent(d.name)} DROP NOT NULL (or SET DEFAULT ...)`,
          ),
        );
      } else {
        problems.push(`column ${displayIdent(d.name)} is not on the source and is NOT NULL without a default`);
      }
    }
  }
  if (problems.length) {
    out.push(
      diag(
        'MR120',
        at,
        `destination table ${name} does not fit the source ${displayQualified(t.source)}: ${problems.join('; ')}`,
        'alter the destination table to match, drop it so mirrors creates it, or map to another destination_table',
      ),
    );
  }
  const key = keyColumns(source);
  if (key.length) {
    const sorted = [...key].sort().join('\u0000');
    const hasKey = dest.indexes.some((i) => i.unique && [...i.columns].sort().join('\u0000') === sorted);
    if (!hasKey) {
      out.push(
        diag(
          'MR123',
          at,
          `destination table ${name} has no primary key or unique index on (${list(key)})`,
          `ALTER TABLE ${name} ADD PRIMARY KEY (${list(key)})`,
        ),
      );
    }
  }
  if (snapshotPlanned && dest.hasRows) {
    out.push(
      diag(
        'MR122',
        at,
        `destination table ${name} already holds rows and a snapshot would copy into it`,
        `empty it (TRUNCATE ${name}) if its rows are disposable, or set do_initial_snapshot: false if it already matches the source`,
      ),
    );
  }
  return out;
}

/** MR119: a mapping names a relation that is not a table Postgres can publish. */
function unpublishable(src: PeerLive, at: string, name: string, r: LiveOtherRelation): Diagnostic {
  if (r.partitionOf) {
    const parent = displayQualified(r.partitionOf);
    return diag(
      'MR119',
      at,
      `${name} is a partition of ${parent}: mirrors publishes a partitioned table through its root, with every partition`,
      `map the partitioned table instead (source_table: '${parent}')`,
    );
  }
  switch (r.kind) {
    case 'v':
      return diag(
        'MR119',
        at,
        `${name} on peer ${src.peer} is a view: only tables can be published`,
        'mirror the tables it reads, and create the view on the destination yourself',
      );
    case 'm':
      return diag(
        'MR119',
        at,
        `${name} on peer ${src.peer} is a materialized view: Postgres does not publish materialized views`,
        'mirror the tables it is computed from, and create and refresh it on the destination',
      );
    default:
      return diag(
        'MR119',
        at,
        `${name} on peer ${src.peer} is a foreign table: its rows live on another server and no change to them is ever decoded`,
        'mirror the server that holds its rows',
      );
  }
}

/** Table privileges an existing destination table must grant for the stream and the snapshot to write it. */
const WRITE = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];

/**
 * Privileges each planned action needs, on the peer it runs on, given what inspection found the roles may
 * do. Reads the actions (what apply will run), so it follows the plan whatever produced it:
 *   source: CREATE PUBLICATION needs CREATE on the database; CREATE PUBLICATION ... FOR TABLE and
 *     ALTER PUBLICATION ... SET TABLE need ownership of every table listed (Postgres 13 to 18 check each one,
 *     also those already published); ALTER and DROP PUBLICATION need ownership of the publication.
 *   destination: a schema action needs CREATE on the database (Postgres checks it before it looks for the
 *     schema, even with IF NOT EXISTS: so the plan creates only schemas that do not exist);
 *     CREATE TABLE and CREATE TYPE need USAGE and CREATE on an existing schema; existing tables it adopts need
 *     SELECT, INSERT, UPDATE, DELETE, TRUNCATE (snapshot and stream) and TRIGGER (the read-only guard);
 *     dropping the guard needs ownership; migrations need ownership of the schema `mirrors`; the snapshot and
 *     the worker connect with session_replication_role = replica.
 * A superuser passes every check (the inspected has_*_privilege and pg_has_role answers say so too).
 */
/** Actions that run on a mirror's destination (and record themselves in its catalog). */
const DESTINATION_KINDS = new Set<Action['kind']>([
  'catalog',
  'schema',
  'extension',
  'type',
  'mirror',
  'table',
  'snapshot',
  'indexes',
  'foreign_keys',
  'stream',
]);

export function checkPrivileges(live: Live, actions: Action[], mirrors: Mirror[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const sqlOf = (a: Action): string[] => ('sql' in a.details ? a.details.sql : []);
  const role = (p: PeerLive) => displayIdent(p.role.name);

  // Source: publications.
  const creates = new Map<string, string[]>();
  for (const a of actions) {
    if (a.kind !== 'publication') continue;
    const src = live.peers[a.peer];
    if (!src || src.role.superuser) continue;
    const name = a.details.name;
    const pub = src.publications[name];
    if (a.op === 'create') creates.set(src.peer, [...(creates.get(src.peer) ?? []), name]);
    if ((a.op === 'update' || a.op === 'delete') && pub?.owned === false) {
      out.push(
        diag(
          'MR117',
          a.address,
          `publication ${name} on peer ${src.peer} is owned by ${pub.owner}, not by role ${src.role.name}: it cannot ${a.op === 'delete' ? 'drop' : 'alter'} it`,
          `ALTER PUBLICATION ${displayIdent(name)} OWNER TO ${role(src)}; (as ${displayIdent(pub.owner)} or a superuser)`,
        ),
      );
    }
    if (a.op === 'delete') continue;
    // The truncate relay's trigger on each leaf: CREATE TRIGGER needs the TRIGGER privilege (or ownership).
    const relay = relayPlan(
      a.mirror ?? '',
      a.details.tables.flatMap((t) => src.tables[tableKey(t)] ?? []),
    );
    const denied = (relay?.missing ?? []).filter((l) => l.canTrigger === false).map(displayQualified);
    if (denied.length)
      out.push(
        diag(
          'MR117',
          a.address,
          `role ${src.role.name} may not create triggers on partition${denied.length === 1 ? '' : 's'} ${denied.join(', ')} on peer ${src.peer}: the mirror's truncate relay puts one on each leaf, so that a TRUNCATE of one partition reaches the destination`,
          `GRANT TRIGGER ON ${denied.join(', ')} TO ${role(src)};`,
        ),
      );
    const byOwner = new Map<string, { tables: string[]; superuser: boolean }>();
    for (const t of a.details.tables) {
      const live = src.tables[tableKey(t)];
      if (live?.owned !== false) continue;
      const owner = live.owner ?? '?';
      const e = byOwner.get(owner) ?? { tables: [], superuser: !!live.ownerIsSuperuser };
      e.tables.push(displayQualified(t));
      byOwner.set(owner, e);
    }
    for (const [owner, { tables, superuser }] of byOwner) {
      // Membership in the owner role counts as ownership, but membership in a superuser role is superuser power.
      const alt = superuser
        ? ''
        : ` or GRANT ${displayIdent(owner)} TO ${role(src)}; (membership in the owner role counts as ownership)`;
      out.push(
        diag(
          'MR117',
          a.address,
          `role ${src.role.name} does not own ${tables.join(', ')} (owner ${owner}) on peer ${src.peer}: Postgres lets only a table's owner add it to publication ${name}`,
          `${tables.map((t) => `ALTER TABLE ${t} OWNER TO ${role(src)};`).join(' ')}${alt}`,
        ),
      );
    }
  }
  for (const [peer, pubs] of creates) {
    const src = live.peers[peer];
    if (src.role.canCreateInDatabase) continue;
    out.push(
      diag(
        'MR109',
        peerAddress(peer),
        `role ${src.role.name} cannot create publication${pubs.length === 1 ? '' : 's'} ${pubs.join(', ')} on peer ${peer}: CREATE PUBLICATION needs CREATE on database ${src.database}`,
        `GRANT CREATE ON DATABASE ${displayIdent(src.database)} TO ${role(src)};`,
      ),
    );
  }

  // Destination: schemas, existing tables, the catalog.
  /** Per destination peer: the schemas the plan creates, which needs CREATE on the database. */
  const dbCreate = new Map<string, string[]>();
  const schemaNeeds = new Map<string, { peer: string; schema: string; privs: Set<string>; objects: string[] }>();
  const tableNeeds = new Map<string, { peer: string; table: LiveTable; privs: Set<string>; address: string }>();
  const needSchema = (dst: PeerLive, schema: string, privs: string[], object: string) => {
    if (!dst.schemas?.[schema]) return;
    const k = `${dst.peer}\u0000${schema}`;
    const e = schemaNeeds.get(k) ?? { peer: dst.peer, schema, privs: new Set<string>(), objects: [] };
    for (const p of privs) e.privs.add(p);
    if (!e.objects.includes(object)) e.objects.push(object);
    schemaNeeds.set(k, e);
  };
  const needTable = (dst: PeerLive, q: QualifiedName | undefined, privs: string[], address: string) => {
    const table = q && dst.tables[tableKey(q)];
    if (!table) return;
    needSchema(dst, q.schema, ['USAGE'], displayQualified(q));
    const k = `${dst.peer}\u0000${tableKey(q)}`;
    const e = tableNeeds.get(k) ?? { peer: dst.peer, table, privs: new Set<string>(), address };
    for (const p of privs) e.privs.add(p);
    tableNeeds.set(k, e);
  };
  const createsTrigger = (a: Action) => sqlOf(a).some((s) => /^CREATE TRIGGER /i.test(s));
  const dropsTrigger = (a: Action) => sqlOf(a).some((s) => /^DROP TRIGGER /i.test(s));
  // ALTER TABLE ... ENABLE TRIGGER, like DROP TRIGGER, is for the table's owner only.
  const enablesTrigger = (a: Action) => sqlOf(a).some((s) => /^ALTER TABLE .* ENABLE TRIGGER /i.test(s));

  // MR104 for the sources of declared mirrors comes from checkSourcePeer.
  const declaredSources = new Set(mirrors.map((m) => m.source));
  // Every action on a destination writes its catalog (rows, journal, locks), which needs the catalog's owner.
  // (A planned migration says so itself, below.)
  const catalogWriters = new Set(actions.filter((a) => a.kind === 'catalog').map((a) => a.peer));
  for (const a of actions) {
    const dst = live.peers[a.peer];
    if (!dst || dst.role.superuser) continue;
    const at = (q: QualifiedName) => (a.mirror ? tableAddress(a.mirror, q) : a.address);
    const catalog = dst.schemas?.mirrors;
    if (DESTINATION_KINDS.has(a.kind) && catalog && !catalog.owned && !catalogWriters.has(dst.peer)) {
      catalogWriters.add(dst.peer);
      out.push(
        diag(
          'MR128',
          peerAddress(dst.peer),
          `the catalog schema "mirrors" on peer ${dst.peer} is owned by ${catalog.owner}, not by role ${dst.role.name}: the plan could not record its actions there`,
          `run this plan as ${displayIdent(catalog.owner)}, or ALTER SCHEMA mirrors OWNER TO ${role(dst)}; and ALTER TABLE ... OWNER TO ${role(dst)}; for each table in it (as ${displayIdent(catalog.owner)} or a superuser)`,
        ),
      );
    }
    // Dropping a slot needs REPLICATION too, also when the plan only destroys (no declared mirror's source).
    if (a.kind === 'slot' && a.op === 'delete' && !dst.role.replication && !declaredSources.has(dst.peer)) {
      declaredSources.add(dst.peer);
      out.push(
        diag(
          'MR104',
          peerAddress(dst.peer),
          `role ${dst.role.name} on peer ${dst.peer} has no REPLICATION privilege, which dropping slot ${a.details.name} needs`,
          `ALTER ROLE ${role(dst)} WITH REPLICATION;`,
        ),
      );
    }
    switch (a.kind) {
      case 'catalog': {
        const schema = dst.schemas?.mirrors;
        if (schema && !schema.owned) {
          out.push(
            diag(
              'MR128',
              a.address,
              `the catalog schema "mirrors" on peer ${dst.peer} is owned by ${schema.owner}, not by role ${dst.role.name}: its migrations ${dst.catalog.version ? `(${dst.catalog.version} to ${a.details.to_version}) ` : ''}cannot run`,
              `run this plan as ${displayIdent(schema.owner)}, or ALTER SCHEMA mirrors OWNER TO ${role(dst)}; and ALTER TABLE ... OWNER TO ${role(dst)}; for each table in it (as ${displayIdent(schema.owner)} or a superuser)`,
            ),
          );
        }
        break;
      }
      case 'schema':
        if (!dst.role.canCreateInDatabase) dbCreate.set(dst.peer, [...(dbCreate.get(dst.peer) ?? []), a.after.schema]);
        break;
      case 'table': {
        if (a.op === 'delete') {
          const q = a.details.destination;
          if (dropsTrigger(a) && dst.tables[tableKey(q)]?.hasGuard) needTable(dst, q, ['OWNER'], at(q));
          break;
        }
        const q = a.details.spec.destination;
        if (a.op === 'update' && enablesTrigger(a)) needTable(dst, q, ['OWNER'], at(q));
        if (a.op === 'create' && a.details.create_table)
          needSchema(dst, q.schema, ['USAGE', 'CREATE'], displayQualified(q));
        else if (a.op !== 'update' || createsTrigger(a)) {
          needTable(
            dst,
            q,
            [...WRITE, ...(createsTrigger(a) && !dst.tables[tableKey(q)]?.hasGuard ? ['TRIGGER'] : [])],
            at(q),
          );
        }
        break;
      }
      case 'mirror':
        if (a.op === 'delete' && dropsTrigger(a)) {
          for (const q of a.details.kept_tables)
            if (dst.tables[tableKey(q)]?.hasGuard) needTable(dst, q, ['OWNER'], at(q));
        }
        break;
      case 'snapshot':
        for (const t of a.details.tables) needTable(dst, t.destination, ['INSERT', 'TRUNCATE'], at(t.destination));
        break;
      case 'type':
        for (const p of Object.values(live.peers)) {
          const t = Object.values(p.types).find((x) => typeAddress(a.peer, x) === a.address);
          if (t) {
            needSchema(dst, t.schema, ['USAGE', 'CREATE'], `type ${displayQualified(t)}`);
            break;
          }
        }
        break;
    }
  }

  for (const [peer, schemas] of dbCreate) {
    const dst = live.peers[peer];
    // The catalog's own MR107 (diff) already asks for the same grant.
    if (dst.catalog.version === 0 && actions.some((a) => a.kind === 'catalog' && a.peer === peer)) continue;
    out.push(
      diag(
        'MR107',
        peerAddress(peer),
        `role ${dst.role.name} cannot create schema ${schemas.map(displayIdent).join(', ')} in database ${dst.database} on peer ${peer}, which the destination tables or types need`,
        `GRANT CREATE ON DATABASE ${displayIdent(dst.database)} TO ${role(dst)};`,
      ),
    );
  }
  for (const e of schemaNeeds.values()) {
    const dst = live.peers[e.peer];
    const s = dst.schemas![e.schema];
    const missing = ['USAGE', 'CREATE'].filter((p) => e.privs.has(p) && !(p === 'USAGE' ? s.usage : s.create));
    if (!missing.length) continue;
    const shown = e.objects.slice(0, 5).join(', ') + (e.objects.length > 5 ? ` and ${e.objects.length - 5} more` : '');
    out.push(
      diag(
        'MR125',
        peerAddress(e.peer),
        `role ${dst.role.name} has no ${missing.join(' or ')} on schema ${displayIdent(e.schema)} on peer ${e.peer}, which the plan needs for ${shown}`,
        `GRANT ${missing.join(', ')} ON SCHEMA ${displayIdent(e.schema)} TO ${role(dst)};`,
      ),
    );
  }
  for (const e of tableNeeds.values()) {
    const dst = live.peers[e.peer];
    const name = displayQualified(e.table);
    const missing = [...e.privs].filter((p) => p !== 'OWNER' && e.table.missingPrivileges?.includes(p));
    const order = [...WRITE, 'TRIGGER'];
    missing.sort((x, y) => order.indexOf(x) - order.indexOf(y));
    const needsOwner = e.privs.has('OWNER') && e.table.owned === false;
    if (!missing.length && !needsOwner) continue;
    const what = [
      ...(missing.length ? [`${missing.join(', ')} on it`] : []),
      ...(needsOwner
        ? [`ownership of it (to drop or enable the read-only guard trigger; owner ${e.table.owner ?? '?'})`]
        : []),
    ];
    const fixes = [
      ...(missing.length ? [`GRANT ${missing.join(', ')} ON ${name} TO ${role(dst)};`] : []),
      ...(needsOwner ? [`ALTER TABLE ${name} OWNER TO ${role(dst)};`] : []),
    ];
    out.push(
      diag(
        'MR127',
        e.address,
        `role ${dst.role.name} on peer ${e.peer} needs ${what.join(' and ')}: the existing destination table ${name} is written by the snapshot and the stream${missing.includes('TRIGGER') ? ' and gets the read-only guard trigger' : ''}`,
        fixes.join(' '),
      ),
    );
  }

  // The snapshot copy and `mirrors run` connect to the destination with session_replication_role = replica.
  const seen = new Set<string>();
  for (const m of mirrors) {
    const dst = live.peers[m.destination];
    if (!dst || seen.has(dst.peer) || dst.role.superuser || dst.role.canSetReplicationRole !== false) continue;
    seen.add(dst.peer);
    const fix =
      dst.serverVersionNum >= 150000
        ? `GRANT SET ON PARAMETER session_replication_role TO ${role(dst)};`
        : `on PostgreSQL ${dst.serverVersion} only a superuser may set it: ALTER ROLE ${role(dst)} SUPERUSER; (on 15+ GRANT SET ON PARAMETER session_replication_role TO ${role(dst)}; is enough)`;
    out.push(
      diag(
        'MR126',
        peerAddress(dst.peer),
        `role ${dst.role.name} on peer ${dst.peer} cannot set session_replication_role, which the snapshot copy and \`mirrors run\` set to replica (so that the destination's triggers and the read-only guard do not fire on replicated rows)`,
        fix,
      ),
    );
  }
  return out;
}
