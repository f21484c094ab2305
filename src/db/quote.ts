/**
 * The single identifier-quoting function. Every identifier that reaches SQL text goes through here;
 * values never do (they travel as $n parameters).
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
