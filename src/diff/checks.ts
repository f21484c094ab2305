/**
 * Preflight checks: what would make applying or streaming a mirror fail, found before anything is
 * changed. Pure: reads Config and Live, returns Diagnostics.
 */
import { displayIdent, displayQualified } from '../config/names.js';
import type { Mirror } from '../config/types.js';
import type { LiveTable, PeerLive } from '../inspect/types.js';
import { diag } from '../plan/diagnostics.js';
import type { Diagnostic } from '../plan/types.js';
import { peerAddress, tableAddress } from '../plan/address.js';
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
    out.push(diag('MR108', at, `peer ${src.peer} runs PostgreSQL ${src.serverVersion}; mirrors needs 13 or later on a source`, 'upgrade the source, or mirror from a newer replica'));
  }
  if (src.settings.wal_level !== 'logical') {
    out.push(diag('MR101', at, `wal_level is ${src.settings.wal_level} on peer ${src.peer}; logical decoding needs logical`, `ALTER SYSTEM SET wal_level = logical; then restart the source server`));
  }
  const freeSlots = src.settings.max_replication_slots - src.slotsInUse;
  if (newSlots > freeSlots) {
    out.push(diag('MR102', at, `max_replication_slots is ${src.settings.max_replication_slots} with ${src.slotsInUse} in use; the plan needs ${newSlots} more`, `ALTER SYSTEM SET max_replication_slots = ${src.slotsInUse + newSlots + 2}; then restart the source`));
  }
  const freeSenders = src.settings.max_wal_senders - src.walSendersInUse;
  if (newWalSenders > freeSenders) {
    out.push(diag('MR103', at, `max_wal_senders is ${src.settings.max_wal_senders} with ${src.walSendersInUse} in use; the mirrors need ${newWalSenders} more`, `ALTER SYSTEM SET max_wal_senders = ${src.walSendersInUse + newWalSenders + 2}; then restart the source`));
  }
  if (!src.role.superuser && !src.role.replication) {
    out.push(diag('MR104', at, `role ${src.role.name} on peer ${src.peer} has no REPLICATION privilege (needed by ${names})`, `ALTER ROLE ${displayIdent(src.role.name)} WITH REPLICATION;`));
  }
  if (src.settings.max_slot_wal_keep_size === -1) {
    out.push(diag('MR105', at, `max_slot_wal_keep_size is unlimited on peer ${src.peer}: a stopped mirror keeps WAL until the source's disk is full`, `ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf();`));
  }
  for (const m of mirrors) {
    if (m.mode === 'sync' && allSyncMirrorsOfSource === 1 && src.settings.synchronous_standby_names.trim() === '') {
      out.push(diag('MR106', at, `mirror ${m.name} would be the only synchronous standby of peer ${src.peer}: every commit there waits while it is down`, 'add a second sync mirror or standby, or use mode: async'));
    }
  }
  return out;
}

/** A mapped source table: present, readable, with a replica identity that survives the column list. */
export function checkSourceTable(src: PeerLive, t: ResolvedTable): { table?: LiveTable; diagnostics: Diagnostic[] } {
  const at = tableAddress(t.mirror, t.destination);
  const name = displayQualified(t.source);
  const table = src.tables[`${t.source.schema}\u0000${t.source.name}`];
  if (!table) {
    return {
      diagnostics: [diag('MR110', at, `source table ${name} does not exist on peer ${src.peer}`, `create it on the source, or fix source_table at ${t.pos.file}:${t.pos.line}:${t.pos.col}`)],
    };
  }
  const out: Diagnostic[] = [];
  if (!table.canSelect) {
    out.push(diag('MR116', at, `role ${src.role.name} cannot SELECT ${name}`, `GRANT SELECT ON ${name} TO ${displayIdent(src.role.name)};`));
  }
  const colNames = new Set(table.columns.map((c) => c.name));
  const unknown = [...t.excludeColumns, ...(t.partitionKey ? [t.partitionKey] : [])].filter((c) => !colNames.has(c));
  if (unknown.length) {
    out.push(diag('MR113', at, `${name} has no column ${list(unknown)}`, `column names are exact and case-sensitive; the table has ${list(table.columns.map((c) => c.name))}`));
  }
  if (t.excludeColumns.length && src.serverVersionNum < 150000) {
    out.push(diag('MR115', at, `exclude_columns on ${name} needs publication column lists (PostgreSQL 15+); peer ${src.peer} runs ${src.serverVersion}`, 'remove exclude_columns or upgrade the source'));
  }
  if (table.replicaIdentity === 'n' || (table.replicaIdentity === 'd' && !table.primaryKey)) {
    out.push(diag('MR111', at, `${name} has no primary key and replica identity ${table.replicaIdentity === 'n' ? 'NOTHING' : 'DEFAULT'}: once published, UPDATE and DELETE on it fail on the source`, `add a primary key, or ALTER TABLE ${name} REPLICA IDENTITY USING INDEX <unique index> (or FULL)`));
  } else if (table.replicaIdentity === 'd' && table.primaryKey?.deferrable) {
    out.push(diag('MR114', at, `${name}'s primary key ${displayIdent(table.primaryKey.name)} is DEFERRABLE and cannot serve as replica identity`, `make it NOT DEFERRABLE, or ALTER TABLE ${name} REPLICA IDENTITY USING INDEX <unique non-deferrable index>`));
  }
  const key = keyColumns(table);
  const excludedKey = t.excludeColumns.filter((c) => key.includes(c));
  if (excludedKey.length) {
    out.push(diag('MR112', at, `${name}: excluded column ${list(excludedKey)} is part of the replica identity`, 'the key must be published: remove it from exclude_columns'));
  } else if (table.replicaIdentity === 'f' && t.excludeColumns.some((c) => colNames.has(c))) {
    out.push(diag('MR112', at, `${name} has REPLICA IDENTITY FULL, which needs every column published`, 'remove exclude_columns, or give the table a primary key'));
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
        out.push(diag('MR121', at, `${name}.${displayIdent(d.name)} is excluded but NOT NULL without a default on the destination: inserts would fail`, `ALTER TABLE ${name} ALTER COLUMN ${displayIdent(d.name)} DROP NOT NULL (or SET DEFAULT ...)`));
      } else {
        problems.push(`column ${displayIdent(d.name)} is not on the source and is NOT NULL without a default`);
      }
    }
  }
  if (problems.length) {
    out.push(diag('MR120', at, `destination table ${name} does not fit the source ${displayQualified(t.source)}: ${problems.join('; ')}`, 'alter the destination table to match, drop it so mirrors creates it, or map to another destination_table'));
  }
  const key = keyColumns(source);
  if (key.length) {
    const sorted = [...key].sort().join('\u0000');
    const hasKey = dest.indexes.some((i) => i.unique && [...i.columns].sort().join('\u0000') === sorted);
    if (!hasKey) {
      out.push(diag('MR123', at, `destination table ${name} has no primary key or unique index on (${list(key)})`, `ALTER TABLE ${name} ADD PRIMARY KEY (${list(key)})`));
    }
  }
  if (snapshotPlanned && dest.hasRows) {
    out.push(diag('MR122', at, `destination table ${name} already holds rows and a snapshot would copy into it`, `empty it (TRUNCATE ${name}) if its rows are disposable, or set do_initial_snapshot: false if it already matches the source`));
  }
  return out;
}
