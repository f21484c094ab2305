/**
 * The DDL that brings a destination table in line with a schema change of its source: columns added, renamed
 * and dropped (the changes drift-columns.ts finds), for the streaming worker under `schema_changes: auto` and for
 * the plan's table update under `plan`. Pure.
 *
 * The DDL must run where the stream stands at the change: right before the first row that carries it. Earlier,
 * rows from before the change would meet the new layout (and a column added with a default would read NULL in
 * rows the source gives the default); later, those rows cannot be applied at all. Hence the worker computes it
 * there, runs it (auto) or records it and stops (plan), and the plan proposes what the worker recorded.
 *
 * What rows older than the change read on the source decides how a column is added:
 * - no default: NULL, as an added destination column gives them;
 * - a non-volatile default: the value pg_attribute.attmissingval holds (no rewrite, no row changes): added with
 *   that value as default, which PostgreSQL 11+ also stores as the missing value, then the default dropped
 *   (destination columns carry none: values come from the source);
 * - a volatile default, an identity, a type change: a table rewrite, which sends no row changes: only a copy
 *   of the table brings the values (`copy`).
 */
import { displayIdent, type QualifiedName } from '../config/names.js';
import type { DroppedColumns } from '../config/types.js';
import { quoteIdent, quoteQualified, quoteText } from '../db/quote.js';
import { type ColumnChange, type ColumnFacts, compareColumns } from './drift-columns.js';

/** A source column with what decides how it is added. */
export interface SourceColumn extends ColumnFacts {
  /** attmissingval as text: the value older rows read. null: there is one, unreadable as text. */
  missing?: string | null;
  identity?: boolean;
  /** Known only by name and type (the source catalog has moved on since): added, it needs a copy. */
  unknown?: boolean;
  /** A non-default collation, when `type` does not already say it (the worker's format_type names). */
  collation?: string;
}

export interface SchemaChangeInput {
  table: QualifiedName;
  /** The source columns as the change leaves them, in attnum order; excluded columns included (they count). */
  source: SourceColumn[];
  /** The destination table's columns, generated ones included only when the source list has them too. */
  destination: ColumnFacts[];
  excluded: string[];
  /** Destination columns kept after a drop on the source (dropped_columns: keep): not compared. */
  kept: string[];
  sourceDropped?: number;
  droppedColumns: DroppedColumns;
}

export type ColumnStepKind = 'add' | 'rename' | 'drop' | 'keep' | 'retype';

export interface ColumnStep {
  change: ColumnStepKind;
  /** The column's name after the step. */
  column: string;
  /** For a rename: the name before. */
  from?: string;
  /** For an add or a type change: the column's type after it. */
  type?: string;
  sql: string[];
  /** What the step does, for the plan and the journal. */
  summary: string;
}

export interface SchemaChange {
  steps: ColumnStep[];
  /** Why the table must be copied afterwards (its steps then run on the emptied table), or null. */
  copy: string | null;
  /** Kept columns after these steps (those kept before included). */
  kept: string[];
  /** Differences that are no schema change of the source (the destination altered by hand): not fixed here. */
  unfixable: ColumnChange[];
}

/** The steps, in the order they must run (drops, renames, adds, type changes); null when the columns fit. */
export function schemaChange(input: SchemaChangeInput): SchemaChange | null {
  const kept = new Set(input.kept);
  const changes = compareColumns({
    source: input.source,
    destination: input.destination.filter((c) => !kept.has(c.name)),
    excluded: input.excluded,
    sourceDropped: input.sourceDropped,
    constraints: false,
  });
  if (!changes.length) return null;
  const table = quoteQualified(input.table.schema, input.table.name);
  const alter = (what: string) => `ALTER TABLE ${table} ${what}`;
  const drops: ColumnStep[] = [];
  const renames: ColumnStep[] = [];
  const adds: ColumnStep[] = [];
  const retypes: ColumnStep[] = [];
  const unfixable: ColumnChange[] = [];
  const copyWhy: string[] = [];
  const keptAfter = [...input.kept];
  for (const c of changes) {
    switch (c.kind) {
      case 'added': {
        const s = c.source as SourceColumn;
        if (kept.has(s.name)) {
          unfixable.push(c); // a kept column holds the name: a person decides which goes
          break;
        }
        const why = rewriteReason(s);
        if (why) copyWhy.push(`${displayIdent(s.name)} ${why}`);
        adds.push(addStep(s, alter, why !== null));
        break;
      }
      case 'dropped': {
        const d = c.destination;
        const name = quoteIdent(d.name);
        if (input.droppedColumns === 'keep') {
          keptAfter.push(d.name);
          drops.push({
            change: 'keep',
            column: d.name,
            // Always: the worker knows no destination NOT NULL, and on a nullable column it is a no-op.
            sql: [alter(`ALTER COLUMN ${name} DROP NOT NULL`)],
            summary: `keep column ${displayIdent(d.name)}, dropped on the source, with its values (NULL in rows written from now on)`,
          });
        } else {
          drops.push({
            change: 'drop',
            column: d.name,
            sql: [alter(`DROP COLUMN ${name}`)],
            summary: `drop column ${displayIdent(d.name)}, dropped on the source`,
          });
        }
        break;
      }
      case 'renamed':
        renames.push({
          change: 'rename',
          column: c.source.name,
          from: c.destination.name,
          sql: [alter(`RENAME COLUMN ${quoteIdent(c.destination.name)} TO ${quoteIdent(c.source.name)}`)],
          summary: `rename column ${displayIdent(c.destination.name)} to ${displayIdent(c.source.name)}`,
        });
        break;
      case 'type':
        copyWhy.push(`${displayIdent(c.source.name)} changed type from ${c.destination.type} to ${c.source.type}`);
        retypes.push({
          change: 'retype',
          column: c.source.name,
          type: c.source.type,
          // Runs on the emptied table, before the copy: no value needs converting.
          sql: [alter(`ALTER COLUMN ${quoteIdent(c.source.name)} TYPE ${c.source.type} USING NULL`)],
          summary: `change the type of ${displayIdent(c.source.name)} from ${c.destination.type} to ${c.source.type}`,
        });
        break;
      default:
        unfixable.push(c);
    }
  }
  return {
    steps: [...drops, ...renames, ...adds, ...retypes],
    copy: copyWhy.length
      ? `${copyWhy.join('; ')}: the source rewrote the table, which sends no row changes, so only a copy brings the values`
      : null,
    kept: keptAfter,
    unfixable,
  };
}

/** Why the values of an added column came from a table rewrite on the source, or null when they did not. */
function rewriteReason(s: SourceColumn): string | null {
  if (s.unknown) return 'was added, but the source no longer has it as the stream sends it';
  if (s.generated) return null; // computed from the other columns on the destination too
  if (s.identity) return 'was added as an identity column (every row got a value in a rewrite)';
  if (s.missing === null) return 'was added with a default whose value cannot be read back as text';
  if (s.missing === undefined && s.default != null)
    return `was added with a default (${s.default}) that rows already there did not get without a rewrite`;
  return null;
}

function addStep(s: SourceColumn, alter: (what: string) => string, copied: boolean): ColumnStep {
  const type = s.collation ? `${s.type} COLLATE ${s.collation}` : s.type;
  return { ...addStepSql(s, type, alter, copied), type };
}

function addStepSql(
  s: SourceColumn,
  type: string,
  alter: (what: string) => string,
  copied: boolean,
): Omit<ColumnStep, 'type'> {
  const name = quoteIdent(s.name);
  const notNull = s.notNull ? ' NOT NULL' : '';
  const shown = displayIdent(s.name);
  if (s.generated) {
    return {
      change: 'add',
      column: s.name,
      sql: [alter(`ADD COLUMN ${name} ${s.type} GENERATED ALWAYS AS (${s.default}) STORED`)],
      summary: `add generated column ${shown} ${s.type}`,
    };
  }
  if (!copied && typeof s.missing === 'string') {
    // The default becomes the missing value of the rows there (no rewrite), then goes: the mirror has none.
    return {
      change: 'add',
      column: s.name,
      sql: [
        alter(`ADD COLUMN ${name} ${type}${notNull} DEFAULT ${quoteText(s.missing)}`),
        alter(`ALTER COLUMN ${name} DROP DEFAULT`),
      ],
      summary: `add column ${shown} ${s.type}${notNull}; rows already there read ${quoteText(s.missing)}, as on the source`,
    };
  }
  return {
    change: 'add',
    column: s.name,
    sql: [alter(`ADD COLUMN ${name} ${type}${notNull}`)],
    summary: `add column ${shown} ${s.type}${notNull}${copied ? '' : '; rows already there read NULL, as on the source'}`,
  };
}

/** Every statement of the steps, in order. */
export function stepsSql(change: SchemaChange): string[] {
  return change.steps.flatMap((s) => s.sql);
}
