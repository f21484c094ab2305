/**
 * resync_strategy swap: the table is copied into a shadow table beside it, which gets the live table's indexes and
 * constraints once loaded (built then, not kept up row by row), and is swapped in within one short destination
 * transaction that carries over what readers and the tool depend on. Readers see the old rows until that commit,
 * then the new ones; the catalog marks the table copied in the same transaction.
 *
 * What the swap carries: owner, grants (table and column), comments (table and column), row-level security and its
 * policies, replica identity, triggers (with their enabled state) and the read-only guard, indexes, constraints
 * (foreign keys re-added NOT VALID, then validated), extended statistics, the views that read the table (recreated
 * with their owner, options, grants and comments) and the foreign keys of other tables that reference it (re-added
 * NOT VALID, then validated). Anything else that depends on the table is refused (MR135), listed in the plan,
 * since DROP TABLE would take it away or refuse: materialized views, views of those views, functions of its row
 * type, rules, inheritance children, the publications of a destination that is itself a source.
 *
 * Index-backed names (indexes, primary key, unique and exclusion constraints, statistics) are unique per schema:
 * the shadow's get temporary names and take the old names in the swap, once the old table is gone. Pure: SQL text.
 */
import { quoteIdent, quoteLiteral, quoteQualified } from '../db/quote.js';
import type { QualifiedName } from '../config/names.js';
import type { LiveTable } from '../inspect/types.js';
import type { SwapPlan } from '../plan/types.js';
import { createGuardSql, PUBLICATION_LOCK_TIMEOUT } from './ddl.js';

/** The shadow's name: in the table's schema (a rename cannot move it), short, the same for every plan of it. */
export const shadowName = (dest: LiveTable): QualifiedName => ({
  schema: dest.schema,
  name: `mirrors_swap_${dest.oid}`,
});

/**
 * What a swap of `dest` cannot carry, or the destination role may not do (DROP and ALTER need ownership): one line
 * each, for MR135.
 */
export function swapRefusals(dest: LiveTable, role: string): string[] {
  const f = dest.swap;
  if (!f) return ['its dependents were not inspected'];
  return [
    ...(dest.owned === false ? [`role ${role} does not own it (owner ${f.owner}), so it cannot drop it`] : []),
    ...f.dependents.filter((d) => d.kind !== 'view' && d.kind !== 'foreign_key').map((d) => d.description),
    ...f.dependents
      .filter((d) => (d.kind === 'view' || d.kind === 'foreign_key') && d.owned === false)
      .map((d) => `${d.description}: role ${role} does not own ${d.onDisplay}, so it cannot recreate it`),
  ];
}

export function swapPlan(dest: LiveTable, mirror: string, sourcePeer: string, keepGuard: boolean): SwapPlan {
  const f = dest.swap!;
  const live = quoteQualified(dest.schema, dest.name);
  const shadow = shadowName(dest);
  const sh = quoteQualified(shadow.schema, shadow.name);
  const temp = (i: number) => `${shadow.name}_${i}`;
  const carried: string[] = [];
  const afterLoad: string[] = [];
  const renames: string[] = [];
  const carry = (what: string) => carried.push(what);

  // Indexes and index-backed constraints: built on the loaded shadow under temporary names.
  let n = 0;
  for (const idx of f.indexes) {
    const t = temp(++n);
    afterLoad.push(retarget(idx.definition, idx.quoted, f.quoted, t, sh));
    renames.push(`ALTER INDEX ${quoteQualified(dest.schema, t)} RENAME TO ${quoteIdent(idx.name)}`);
    carry(`index ${idx.name}`);
  }
  const fks: { on: string; name: string; def: string; validated: boolean }[] = [];
  for (const c of f.constraints) {
    if (c.type === 'f') {
      fks.push({ on: live, name: c.name, def: c.definition, validated: c.validated });
      carry(`foreign key ${c.name}`);
    } else if (c.type === 'p' || c.type === 'u' || c.type === 'x') {
      const t = temp(++n);
      afterLoad.push(`ALTER TABLE ${sh} ADD CONSTRAINT ${quoteIdent(t)} ${c.definition}`);
      renames.push(`ALTER TABLE ${live} RENAME CONSTRAINT ${quoteIdent(t)} TO ${quoteIdent(c.name)}`);
      carry(`constraint ${c.name}`);
    } else {
      // CHECK: its name is the table's own, so the shadow takes it at once.
      afterLoad.push(
        `ALTER TABLE ${sh} ADD CONSTRAINT ${quoteIdent(c.name)} ${c.definition}${c.validated ? '' : ' NOT VALID'}`,
      );
      carry(`constraint ${c.name}`);
    }
  }
  for (const s of f.statistics) {
    const t = temp(++n);
    afterLoad.push(retargetStatistics(s.definition, s.quoted, f.quoted, quoteQualified(s.schema, t), sh));
    renames.push(`ALTER STATISTICS ${quoteQualified(s.schema, t)} RENAME TO ${quoteIdent(s.name)}`);
    carry(`statistics ${s.name}`);
  }
  afterLoad.push(`ANALYZE ${sh}`);

  const views = f.dependents.filter((d) => d.kind === 'view');
  const identities = f.sequences.filter((q) => q.identity);
  const serials = f.sequences.filter((q) => !q.identity);
  const incoming = f.dependents.filter((d) => d.kind === 'foreign_key');
  // Everything the transaction changes is locked at once, the views first: a query of a view holds the view and
  // then asks for the table, and taking the table first deadlocks with it (PostgreSQL cancels one after
  // deadlock_timeout).
  const locked = [...new Set([...views.map((d) => d.on!), ...incoming.map((d) => d.on!), live])];
  const swap: string[] = [
    `SET LOCAL lock_timeout = '${PUBLICATION_LOCK_TIMEOUT}'`,
    `LOCK TABLE ${locked.join(', ')} IN ACCESS EXCLUSIVE MODE`,
    ...incoming.map((d) => `ALTER TABLE ${d.on} DROP CONSTRAINT ${quoteIdent(d.name!)}`),
    ...views.map((d) => `DROP VIEW ${d.on}`),
    // An identity column's new sequence goes on from where the old one is, under its name; a serial column's default
    // (copied by LIKE) calls the old sequence, which the shadow takes over so that it outlives the old table.
    ...identities.map(
      (q) =>
        `DO $swap$ DECLARE v bigint; c boolean; BEGIN SELECT last_value, is_called INTO v, c FROM ${q.sequence}; PERFORM setval(pg_get_serial_sequence(${quoteLiteral(sh)}, ${quoteLiteral(q.column)}), v, c); END $swap$`,
    ),
    ...serials.map((q) => `ALTER SEQUENCE ${q.sequence} OWNED BY ${sh}.${quoteIdent(q.column)}`),
    `DROP TABLE ${live}`,
    `ALTER TABLE ${sh} RENAME TO ${quoteIdent(dest.name)}`,
    ...renames,
    ...identities.map(
      (q) =>
        `DO $swap$ BEGIN EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', pg_get_serial_sequence(${quoteLiteral(live)}, ${quoteLiteral(q.column)}), ${quoteLiteral(q.name)}); END $swap$`,
    ),
    `ALTER TABLE ${live} OWNER TO ${quoteIdent(f.owner)}`,
  ];
  carry(`owner ${f.owner}`);
  for (const g of f.grants) {
    const cols = g.column ? ` (${quoteIdent(g.column)})` : '';
    swap.push(
      `GRANT ${g.privilege}${cols} ON ${live} TO ${g.grantee === 'PUBLIC' ? 'PUBLIC' : quoteIdent(g.grantee)}${g.grantable ? ' WITH GRANT OPTION' : ''}`,
    );
    carry(`grant ${g.privilege}${g.column ? ` (${g.column})` : ''} to ${g.grantee}`);
  }
  if (f.comment !== null) swap.push(`COMMENT ON TABLE ${live} IS ${quoteLiteral(f.comment)}`);
  for (const c of f.columnComments)
    swap.push(`COMMENT ON COLUMN ${live}.${quoteIdent(c.column)} IS ${quoteLiteral(c.comment)}`);
  if (f.comment !== null || f.columnComments.length) carry('comments');
  if (f.rowSecurity) swap.push(`ALTER TABLE ${live} ENABLE ROW LEVEL SECURITY`);
  if (f.forceRowSecurity) swap.push(`ALTER TABLE ${live} FORCE ROW LEVEL SECURITY`);
  if (f.rowSecurity) carry('row-level security');
  for (const p of f.policies) {
    const to = p.roles.map((r) => (r === 'PUBLIC' ? 'PUBLIC' : quoteIdent(r))).join(', ');
    swap.push(
      `CREATE POLICY ${quoteIdent(p.name)} ON ${live} AS ${p.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${POLICY_COMMANDS[p.command]} TO ${to}` +
        (p.using !== null ? ` USING (${p.using})` : '') +
        (p.check !== null ? ` WITH CHECK (${p.check})` : ''),
    );
    carry(`policy ${p.name}`);
  }
  if (f.replicaIdentity === 'f') swap.push(`ALTER TABLE ${live} REPLICA IDENTITY FULL`);
  else if (f.replicaIdentity === 'n') swap.push(`ALTER TABLE ${live} REPLICA IDENTITY NOTHING`);
  else if (f.replicaIdentity === 'i' && f.replicaIdentityIndex)
    swap.push(`ALTER TABLE ${live} REPLICA IDENTITY USING INDEX ${quoteIdent(f.replicaIdentityIndex)}`);
  if (f.replicaIdentity !== 'd') carry('replica identity');
  for (const t of f.triggers) {
    swap.push(t.definition);
    if (t.enabled !== 'O') swap.push(`ALTER TABLE ${live} ${TRIGGER_STATES[t.enabled]} TRIGGER ${quoteIdent(t.name)}`);
    carry(`trigger ${t.name}`);
  }
  if (keepGuard) swap.push(createGuardSql(dest, mirror, sourcePeer));
  for (const fk of fks) swap.push(`ALTER TABLE ${fk.on} ADD CONSTRAINT ${quoteIdent(fk.name)} ${fk.def} NOT VALID`);
  for (const d of incoming) {
    swap.push(`ALTER TABLE ${d.on} ADD CONSTRAINT ${quoteIdent(d.name!)} ${d.definition} NOT VALID`);
    carry(`foreign key ${d.name} of ${d.onDisplay}`);
  }
  for (const v of views) {
    swap.push(...(v.recreate ?? []));
    carry(`view ${v.onDisplay}`);
  }
  const validate = [
    ...fks.filter((fk) => fk.validated).map((fk) => ({ on: fk.on, name: fk.name })),
    ...incoming.filter((d) => d.validated).map((d) => ({ on: d.on!, name: d.name! })),
  ];
  return {
    shadow,
    prepare: [
      `DROP TABLE IF EXISTS ${sh}`,
      // Columns with their types, collations, NOT NULL, defaults, identity, generated expressions and storage; no
      // index, constraint, comment or statistics: those come after the load, or with the swap.
      `CREATE TABLE ${sh} (LIKE ${live} INCLUDING ALL EXCLUDING INDEXES EXCLUDING CONSTRAINTS EXCLUDING COMMENTS EXCLUDING STATISTICS)`,
    ],
    after_load: afterLoad,
    swap,
    after_swap: validate.map((v) => `ALTER TABLE ${v.on} VALIDATE CONSTRAINT ${quoteIdent(v.name)}`),
    carried,
  };
}

const POLICY_COMMANDS: Record<string, string> = { r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' };
const TRIGGER_STATES: Record<string, string> = { D: 'DISABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' };

/**
 * An index definition of the live table (`CREATE [UNIQUE] INDEX name ON [ONLY] schema.table USING ...`, with
 * identifiers quoted as the server quotes them) for the shadow, under the name `to`.
 */
function retarget(def: string, quotedName: string, quotedTable: string, to: string, shadow: string): string {
  for (const head of ['CREATE INDEX ', 'CREATE UNIQUE INDEX ']) {
    for (const on of [' ON ', ' ON ONLY ']) {
      const prefix = `${head}${quotedName}${on}${quotedTable} `;
      if (def.startsWith(prefix)) return `${head}${quoteIdent(to)}${on}${shadow} ${def.slice(prefix.length)}`;
    }
  }
  throw new Error(`internal: cannot read index definition ${def}`);
}

/** `CREATE STATISTICS schema.name ... FROM schema.table` of the live table, for the shadow under `to`. */
function retargetStatistics(def: string, quotedName: string, quotedTable: string, to: string, shadow: string): string {
  const head = `CREATE STATISTICS ${quotedName}`;
  const tail = ` FROM ${quotedTable}`;
  if (!def.startsWith(head) || !def.endsWith(tail))
    throw new Error(`internal: cannot read statistics definition ${def}`);
  return `CREATE STATISTICS ${to}${def.slice(head.length, def.length - tail.length)} FROM ${shadow}`;
}

/** How the plan's reason counts what a swap carries, by the words each `carried` entry starts with. */
const CARRIED_KINDS: [prefix: string, one: string, many: string][] = [
  ['index ', 'index', 'indexes'],
  ['constraint ', 'constraint', 'constraints'],
  ['foreign key ', 'foreign key', 'foreign keys'],
  ['statistics ', 'statistics object', 'statistics objects'],
  ['owner ', 'owner', 'owner'],
  ['grant ', 'grant', 'grants'],
  ['comments', 'comments', 'comments'],
  ['row-level security', 'row-level security', 'row-level security'],
  ['policy ', 'policy', 'policies'],
  ['replica identity', 'replica identity', 'replica identity'],
  ['trigger ', 'trigger', 'triggers'],
];

/**
 * For the plan's reason: the dependents the swap recreates (views, other tables' foreign keys), each named, and how
 * many of the table's own parts it carries, by kind.
 */
export function carriedSummary(p: SwapPlan): string {
  const named = p.carried.filter((c) => c.startsWith('view ') || / of /.test(c));
  const counts = new Map<string, number>();
  for (const c of p.carried) {
    if (named.includes(c)) continue;
    const kind = CARRIED_KINDS.find(([prefix]) => c.startsWith(prefix));
    if (kind) counts.set(kind[0], (counts.get(kind[0]) ?? 0) + 1);
  }
  const parts = CARRIED_KINDS.filter(([prefix]) => counts.has(prefix)).map(([prefix, one, many]) => {
    const n = counts.get(prefix)!;
    return n === 1 || one === many ? one : `${n} ${many}`;
  });
  return [...named, ...parts].join(', ');
}
