/**
 * The single identifier-quoting function. Every identifier that reaches SQL text goes through here.
 * Values travel as $n parameters, except in the worker's batches (one multi-statement query, which takes
 * no parameters): those go through quoteText.
 */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw new Error('identifier contains a NUL byte');
  return '"' + name.replace(/"/g, '""') + '"';
}

export function quoteQualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** A string literal, only for the few places Postgres accepts no parameter (replication commands, DDL). */
export function quoteLiteral(value: string): string {
  if (value.includes('\u0000')) throw new Error('literal contains a NUL byte');
  return "'" + value.replace(/'/g, "''") + "'";
}

/**
 * A string literal Postgres reads back unchanged whatever standard_conforming_strings says: quotes doubled,
 * and when there is a backslash, an E'' literal with backslashes doubled (what Postgres's quote_literal does).
 */
export function quoteText(value: string): string {
  if (value.includes('\u0000')) throw new Error('literal contains a NUL byte');
  const quoted = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${quoted.replace(/\\/g, '\\\\')}'` : `'${quoted}'`;
}
