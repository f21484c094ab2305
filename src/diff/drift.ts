/**
 * Schema drift of a streaming table: its source, its destination and what the mirror expects of them (the
 * mapping's excluded columns, the publication's column list, the read-only guard) compared, each difference a
 * diagnostic with a stable code (MR150-MR159, docs/diagnostics.md) and a unified diff of the two definitions.
 * Pure: `mirrors plan` calls tableDrift and sourceGone for every `ready` table; the streaming worker calls
 * relationDrift with what a pgoutput Relation message announces.
 */
import { displayIdent, displayQualified, type QualifiedName } from '../config/names.js';
import type { GuardState, LiveColumn, LiveTable } from '../inspect/types.js';
import { diag } from '../plan/diagnostics.js';
import { publicationName, tableAddress } from '../plan/address.js';
import type { Diagnostic } from '../plan/types.js';
import { keyColumns } from './ddl.js';
import { type ColumnFacts, compareColumns } from './drift-columns.js';
import { describe, groupByCode, guardDrift } from './drift-messages.js';
import { absentText, type Definition, definitionText, unifiedPatch } from './drift-text.js';

export interface DriftColumn {
  name: string;
  type: string;
  notNull?: boolean;
  default?: string | null;
}

export interface RelationDrift {
  code: 'MR150' | 'MR151' | 'MR152' | 'MR153';
  message: string;
  hint: string;
  diff: string;
}

/**
 * What the worker sees: the columns a pgoutput Relation message announces (name and source type text) against
 * the destination table's columns (minus excluded). Null when they fit. `destination` lists the columns the
 * stream writes: generated columns, which pgoutput never sends, left out. A type given as '' is not compared.
 * With several differences the code is the lowest one's, and the message names them all.
 */
export function relationDrift(
  table: { source: string; destination: string },
  sent: DriftColumn[],
  destination: DriftColumn[],
  excluded: string[],
): RelationDrift | null {
  const nameAndType = (c: DriftColumn): ColumnFacts => ({ name: c.name, type: c.type });
  const changes = compareColumns({
    source: sent.map(nameAndType),
    destination: destination.map(nameAndType),
    excluded,
    constraints: false,
  });
  if (!changes.length) return null;
  const groups = groupByCode(changes, (c) => (c.kind === 'lost' ? 'MR150' : c.kind === 'extra' ? 'MR151' : null));
  const names = { source: table.source, destination: table.destination };
  const texts = groups.map((g) => describe(g.code, g.changes, names));
  const excludedSet = new Set(excluded);
  const side = (cols: DriftColumn[]) =>
    definitionText({
      table: table.destination,
      columns: cols.filter((c) => !excludedSet.has(c.name)).map(nameAndType),
      key: null,
    });
  return {
    code: groups[0].code as RelationDrift['code'],
    message: texts.map((t) => t.message).join('; '),
    hint: texts.map((t) => t.hint).join(' '),
    diff: unifiedPatch(
      `${table.source} (source, as the stream sends it)`,
      side(sent),
      `${table.destination} (destination)`,
      side(destination),
    ),
  };
}

/** A mirrored table whose catalog state is `ready`: copied, and streaming. */
export interface ReadyTable {
  mirror: string;
  sourcePeer: string;
  destinationPeer: string;
  source: QualifiedName;
  destination: QualifiedName;
  excludeColumns: string[];
  /** Destination columns kept after a drop on the source (dropped_columns: keep): not compared. */
  keptColumns?: string[];
}

/** The mirror's publication and the table's entry in it; absent when it does not publish the table. */
export interface PublishedColumns {
  publication: string;
  /** The column list; null: every column. */
  columns: string[] | null;
}

/**
 * Drift of a ready table whose source exists (sourceGone covers the other case): columns (MR150-MR155, MR158),
 * the key and a missing destination (MR158), columns the publication hides (MR156), the read-only guard (MR159).
 */
export function tableDrift(
  t: ReadyTable,
  source: LiveTable,
  destination: LiveTable | undefined,
  published: PublishedColumns | undefined,
): Diagnostic[] {
  if (!destination) return [destinationGone(t, source)];
  if (t.keptColumns?.length) {
    const kept = new Set(t.keptColumns);
    destination = { ...destination, columns: destination.columns.filter((c) => !kept.has(c.name)) };
  }
  // Every ready table of every plan comes here and almost none has drifted: find out before building any text.
  const changes = columnsFit(source, destination, t.excludeColumns)
    ? []
    : compareColumns({
        source: source.columns.map(facts),
        destination: destination.columns.map(facts),
        excluded: t.excludeColumns,
        sourceDropped: source.droppedColumns,
        constraints: true,
      });
  const key = keyColumns(source);
  const keyMissing = key.length > 0 && !hasUniqueOn(destination, key);
  const hidden = hiddenColumns(t, source, published);
  if (
    !changes.length &&
    !keyMissing &&
    (destination.guardState ?? 'enabled') === 'enabled' &&
    destination.hasGuard !== false
  )
    return hidden ? [hidden] : [];

  const at = tableAddress(t.mirror, t.destination);
  const names = {
    source: displayQualified(t.source),
    destination: displayQualified(t.destination),
    sourcePeer: t.sourcePeer,
  };
  const out: Diagnostic[] = groupByCode(changes, () => null).map((g) => {
    const { message, hint } = describe(g.code, g.changes, names);
    return diag(g.code, at, message, hint);
  });
  if (keyMissing) {
    out.push(
      diag(
        'MR158',
        at,
        `destination ${names.destination} has no primary key or unique index on (${key.map(displayIdent).join(', ')}), the source's replica identity by which the stream applies updates and deletes`,
        `on the destination: ALTER TABLE ${names.destination} ADD ${keyConstraint(source, key)};`,
      ),
    );
  }
  const guard = guardDrift(destination.hasGuard, destination.guardState, names.destination);
  if (guard) out.push(diag('MR159', at, guard.message, guard.hint));
  const diff = unifiedPatch(
    sourceSide(t),
    definitionText(expectedDefinition(t, source, destination)),
    destinationSide(t),
    definitionText(destinationDefinition(t, source, destination)),
  );
  return [...out.map((d) => withDiff(d, diff)), ...(hidden ? [hidden] : [])];
}

const sourceSide = (t: ReadyTable) => `${t.sourcePeer}:${displayQualified(t.source)} (source, as mirrored)`;
const destinationSide = (t: ReadyTable) => `${t.destinationPeer}:${displayQualified(t.destination)} (destination)`;

/** MR158 for a ready table whose destination table is gone. */
function destinationGone(t: ReadyTable, source: LiveTable): Diagnostic {
  const dest = displayQualified(t.destination);
  return withDiff(
    diag(
      'MR158',
      tableAddress(t.mirror, t.destination),
      `destination table ${dest} of mirror ${t.mirror} no longer exists on peer ${t.destinationPeer}`,
      'remove the table from `tables:` and apply, then add it back and apply: mirrors creates it and copies it again',
    ),
    unifiedPatch(
      sourceSide(t),
      definitionText(expectedDefinition(t, source, undefined)),
      destinationSide(t),
      absentText(dest, t.destinationPeer),
    ),
  );
}

/**
 * MR157: the source of a ready table is gone. A renamed table stays in the publication (Postgres keeps the
 * relation, not its name), so a published table no mapping of the mirror names is what it was renamed to.
 */
export function sourceGone(
  t: ReadyTable,
  destination: LiveTable | undefined,
  unmappedPublished: QualifiedName[],
  pos: { file: string; line: number; col: number },
): Diagnostic {
  const source = displayQualified(t.source);
  const dest = displayQualified(t.destination);
  const renamed = unmappedPublished.map(displayQualified);
  const [message, hint] = renamed.length
    ? [
        `source table ${source} of streaming table ${dest} no longer exists on peer ${t.sourcePeer}; publication ${publicationName(t.mirror)} still publishes ${renamed.join(', ')}, which no mapping names: it was renamed`,
        `point source_table at ${renamed[0]} (keeping destination_table: ${dest}) at ${pos.file}:${pos.line}:${pos.col}: the table is then copied again from it; or rename it back on the source`,
      ]
    : [
        `source table ${source} of streaming table ${dest} no longer exists on peer ${t.sourcePeer}: it was dropped (or renamed and removed from the publication)`,
        `remove the mapping at ${pos.file}:${pos.line}:${pos.col} (destination ${dest} and its rows are kept, and it becomes writable), or create the source table again`,
      ];
  const destText = destination
    ? definitionText({ table: dest, columns: destination.columns.map(facts), key: null })
    : absentText(dest, t.destinationPeer);
  return withDiff(
    diag('MR157', tableAddress(t.mirror, t.destination), message, hint),
    unifiedPatch(
      `${t.sourcePeer}:${source} (source)`,
      absentText(source, t.sourcePeer),
      `${t.destinationPeer}:${dest} (destination)`,
      destText,
    ),
  );
}

/**
 * Whether compareColumns would find nothing, decided on the inspected columns without building any: every ready
 * table of every plan is checked, and almost all of them fit.
 */
function columnsFit(source: LiveTable, destination: LiveTable, excluded: string[]): boolean {
  const keep = (c: LiveColumn) => !excluded.includes(c.name);
  const src = excluded.length ? source.columns.filter(keep) : source.columns;
  const dst = excluded.length ? destination.columns.filter(keep) : destination.columns;
  if (src.length !== dst.length) return false;
  return src.every((s, i) => {
    const d = dst[i];
    if (s.name !== d.name || s.type !== d.type || s.collation !== d.collation || s.notNull !== d.notNull) return false;
    if (s.generated !== d.generated) return false;
    // As defaultDiffers: a generated column keeps its expression; a destination default must be the source's.
    return s.generated ? s.default === d.default : d.default === undefined || d.default === s.default;
  });
}

function withDiff(d: Diagnostic, diff: string): Diagnostic {
  return { ...d, diff };
}

/** A live column as drift compares it (the collation folded into the type). */
export function facts(c: LiveColumn): ColumnFacts {
  return {
    name: c.name,
    type: c.collation ? `${c.type} COLLATE ${c.collation}` : c.type,
    notNull: c.notNull,
    default: c.default ?? null,
    generated: c.generated === 's',
    attnum: c.attnum,
  };
}

/**
 * The source as the destination should have it: columns without the excluded ones, the stream's key, an
 * enabled guard. A source default is left out where the destination has the column without one (mirrors
 * creates columns without defaults: not a difference worth a line).
 */
function expectedDefinition(t: ReadyTable, source: LiveTable, destination: LiveTable | undefined): Definition {
  const excluded = new Set(t.excludeColumns);
  const bare = new Set(
    (destination?.columns ?? []).filter((c) => c.default === undefined && c.generated === '').map((c) => c.name),
  );
  const key = keyColumns(source);
  return {
    table: displayQualified(t.destination),
    columns: source.columns
      .filter((c) => !excluded.has(c.name))
      .map(facts)
      .map((c) => (bare.has(c.name) && !c.generated ? { ...c, default: null } : c)),
    key: key.length ? keyConstraint(source, key) : null,
    notes: [guardNote('enabled')],
  };
}

function destinationDefinition(t: ReadyTable, source: LiveTable, destination: LiveTable): Definition {
  const excluded = new Set(t.excludeColumns);
  const key = keyColumns(source);
  const pk = destination.primaryKey;
  return {
    table: displayQualified(t.destination),
    columns: destination.columns.filter((c) => !excluded.has(c.name)).map(facts),
    key:
      key.length && hasUniqueOn(destination, key)
        ? keyConstraint(source, key)
        : pk
          ? `PRIMARY KEY (${pk.columns.map(displayIdent).join(', ')})`
          : null,
    notes: [guardNote(destination.hasGuard === false ? 'missing' : (destination.guardState ?? 'enabled'))],
  };
}

function guardNote(state: GuardState | 'missing'): string {
  const shown = state === 'replica' ? 'ENABLE REPLICA' : state === 'always' ? 'ENABLE ALWAYS' : state;
  return `TRIGGER mirrors_read_only (the read-only guard): ${shown}`;
}

function keyConstraint(source: LiveTable, key: string[]): string {
  const isPk = source.primaryKey && source.replicaIdentity === 'd';
  return `${isPk ? 'PRIMARY KEY' : 'UNIQUE'} (${key.map(displayIdent).join(', ')})`;
}

function hasUniqueOn(t: LiveTable, key: string[]): boolean {
  return t.indexes.some((i) => i.unique && i.columns.length === key.length && key.every((c) => i.columns.includes(c)));
}

/** MR156: source columns a publication column list leaves out that the mapping does not exclude (PostgreSQL 15+). */
function hiddenColumns(t: ReadyTable, source: LiveTable, published: PublishedColumns | undefined): Diagnostic | null {
  if (!published?.columns) return null;
  const listed = new Set(published.columns);
  const excluded = new Set(t.excludeColumns);
  const wanted = source.columns.filter((c) => c.generated === '' && !excluded.has(c.name));
  const hidden = wanted.filter((c) => !listed.has(c.name));
  if (!hidden.length) return null;
  const src = displayQualified(t.source);
  const s = hidden.length === 1 ? '' : 's';
  return withDiff(
    diag(
      'MR156',
      tableAddress(t.mirror, t.destination),
      `column${s} ${hidden.map((c) => displayIdent(c.name)).join(', ')} of source ${src} ${s ? 'are' : 'is'} neither in publication ${published.publication}'s column list nor in exclude_columns: ${s ? 'their' : 'its'} values never reach the destination`,
      `apply this plan: its publication update publishes ${s ? 'them' : 'it'} (add ${s ? 'them' : 'it'} to the destination first, MR150); or list ${s ? 'them' : 'it'} in exclude_columns`,
    ),
    unifiedPatch(
      `${t.sourcePeer}:${src} columns (source, without exclude_columns)`,
      wanted.map((c) => `${displayIdent(c.name)}\n`).join(''),
      `${t.sourcePeer}:publication ${published.publication} column list for ${src}`,
      published.columns.map((c) => `${displayIdent(c)}\n`).join(''),
    ),
  );
}
