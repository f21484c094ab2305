/**
 * The text drift diagnostics carry: a table's definition as `CREATE TABLE`-like text (one column per line, so a
 * unified diff of two of them shows each differing column on a line of its own) and the unified diff itself
 * (the `diff` package). Pure.
 */
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import { displayIdent } from '../config/names.js';
import type { ColumnFacts } from './drift-columns.js';

export interface Definition {
  /** Display name of the table, e.g. `public.users`. */
  table: string;
  columns: ColumnFacts[];
  /** `PRIMARY KEY (id)` or `UNIQUE (a, b)`: the key the stream applies changes by; null when there is none. */
  key: string | null;
  /** Lines after the table (the read-only guard's state). Never starting with `-` or `+`: the diff's own signs. */
  notes?: string[];
}

/**
 * Every element line ends with a comma, the last one too: not valid SQL, but a column added at the end then
 * changes one line, not two.
 */
export function definitionText(d: Definition): string {
  const lines = [`CREATE TABLE ${d.table} (`];
  for (const c of d.columns) lines.push(`  ${columnLine(c)},`);
  if (d.key) lines.push(`  ${d.key},`);
  lines.push(');', ...(d.notes ?? []));
  return `${lines.join('\n')}\n`;
}

export function columnLine(c: ColumnFacts): string {
  let line = `${displayIdent(c.name)} ${c.type}`;
  if (c.notNull) line += ' NOT NULL';
  if (c.generated && c.default) line += ` GENERATED ALWAYS AS (${c.default}) STORED`;
  else if (c.default != null) line += ` DEFAULT ${c.default}`;
  return line;
}

/** The text a side shows when it has no table at all. */
export function absentText(table: string, peer: string): string {
  return `(no table ${table} on peer ${peer})\n`;
}

/** A unified diff from `before` (the source side) to `after` (the destination side), file headers included. */
export function unifiedPatch(beforeName: string, before: string, afterName: string, after: string): string {
  return createTwoFilesPatch(beforeName, afterName, before, after, undefined, undefined, {
    context: 3,
    headerOptions: FILE_HEADERS_ONLY,
  });
}
