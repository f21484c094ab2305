/**
 * SQL qualified names as psql users write them: `public.users`, `users` (schema public),
 * `"Sales Dept"."Order Items"`, `reporting.*`. Unquoted parts fold to lower case as in Postgres.
 * Also what Postgres itself would refuse or silently change in a name: length, reserved schemas. Pure: no I/O.
 */
import { clip, quote } from './echo.js';

export interface QualifiedName {
  schema: string;
  name: string;
}

export type ParsedTableRef = { kind: 'table'; schema: string; name: string } | { kind: 'schema'; schema: string }; // `schema.*`

const PLAIN = /^[a-z_][a-z0-9_$]*$/;

export function parseTableRef(text: string): ParsedTableRef {
  const parts = splitParts(text);
  if (parts.length === 1) {
    if (parts[0].wildcard) throw new Error('a wildcard needs a schema: write `schema.*`');
    return { kind: 'table', schema: 'public', name: parts[0].value };
  }
  if (parts.length === 2) {
    if (parts[0].wildcard) throw new Error('the schema part cannot be a wildcard');
    if (parts[1].wildcard) return { kind: 'schema', schema: parts[0].value };
    return { kind: 'table', schema: parts[0].value, name: parts[1].value };
  }
  throw new Error(
    'expected `table` or `schema.table`, found ' + parts.length + ' dotted parts (quote a name containing a dot)',
  );
}

interface Part {
  value: string;
  wildcard: boolean;
}

function splitParts(text: string): Part[] {
  const parts: Part[] = [];
  let i = 0;
  const n = text.length;
  if (n === 0) throw new Error('empty table name');
  for (;;) {
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= n) throw new Error('unterminated quoted identifier');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i++];
      }
      if (value === '') throw new Error('zero-length quoted identifier');
      parts.push({ value, wildcard: false });
    } else {
      let j = i;
      while (j < n && text[j] !== '.' && text[j] !== '"') j++;
      const raw = text.slice(i, j);
      if (raw === '*') parts.push({ value: '*', wildcard: true });
      else {
        const folded = raw.toLowerCase();
        if (!/^[a-z_\u0080-\uffff][a-z0-9_$\u0080-\uffff]*$/.test(folded)) {
          throw new Error(
            raw === ''
              ? 'empty name part'
              : `${quote(raw)} is not a plain identifier: double-quote it (e.g. "${clip(raw.replace(/"/g, '""'))}")`,
          );
        }
        parts.push({ value: folded, wildcard: false });
      }
      i = j;
    }
    if (i >= n) break;
    if (text[i] !== '.') throw new Error(`unexpected character \`${text[i]}\` at ${i + 1}`);
    i++;
    if (i >= n) throw new Error('name ends with a dot');
  }
  return parts;
}

/** NAMEDATALEN - 1: Postgres truncates a longer identifier, in UTF-8 bytes, to this many. */
export const MAX_IDENTIFIER_BYTES = 63;

/**
 * Why `name` cannot be used as a Postgres identifier, or undefined when it can (`shown` is how the message
 * refers to it, for a name that must not be quoted). Postgres would truncate a
 * longer name (with a NOTICE only), so it would name a different object than the one written.
 */
export function identifierProblem(name: string, shown = quote(name)): string | undefined {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes <= MAX_IDENTIFIER_BYTES) return undefined;
  return `${shown} is ${bytes} bytes long: Postgres names are at most ${MAX_IDENTIFIER_BYTES} bytes (UTF-8), and it would cut this one into another name`;
}

/** Schemas Postgres reserves: `pg_catalog`, `pg_toast`, any other `pg_*` (CREATE SCHEMA refuses the prefix), `information_schema`. */
export function isReservedSchema(schema: string): boolean {
  return schema.startsWith('pg_') || schema === 'information_schema';
}

/** Formats one identifier as psql shows it: bare when plain lower case, else double-quoted. */
export function displayIdent(name: string): string {
  return PLAIN.test(name) ? name : '"' + name.replace(/"/g, '""') + '"';
}

export function displayQualified(q: QualifiedName): string {
  return `${displayIdent(q.schema)}.${displayIdent(q.name)}`;
}

/** A stable map key for a table: schema and name joined by a character that cannot appear in either. */
export function tableKey(q: QualifiedName): string {
  return `${q.schema}\u0000${q.name}`;
}
