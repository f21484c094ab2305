/**
 * Plans a declared promotion (`promote:` on a mirror; docs/promotion.md): the preflight that must hold, and
 * every statement of the protocol, for `mirrors apply` to run exactly. Pure.
 *
 * The fence: one source transaction locks the mirrored tables IN EXCLUSIVE MODE (waits out writers in
 * flight, blocks new ones, not readers), creates on each a statement trigger that rejects every write with
 * MIRROR_FENCED (ENABLE ALWAYS: it fires for replica-role sessions too), and writes a marker into the WAL.
 * The transaction stays open until the destination has applied everything up to the marker: a crash of
 * mirrors meanwhile releases everything (writers continue, nothing to clean up). Committed, the triggers
 * stay: a stale application gets a clear error naming the new primary instead of writing into the void.
 */
import { PROMOTE_DEFAULTS, REVERSE_SUFFIX, type Mirror } from '../config/types.js';
import type { CatalogMirror, CatalogTable, PeerLive } from '../inspect/types.js';
import { quoteIdent, quoteLiteral, quoteQualified } from '../db/quote.js';
import { diag } from '../plan/diagnostics.js';
import * as addr from '../plan/address.js';
import type { Diagnostic, PromotionCreate, PromotionDetails, PromotionOpen, PromotionTable } from '../plan/types.js';
import { tableKey } from '../config/names.js';
import {
  promotionRestore,
  setvalWithoutSourceSql,
  verifySql,
  type PromotedTable,
  type PromotionRestore,
} from './promotion-sql.js';
import { describeLoss, lossEstimate } from './loss.js';
import { syncGuarantee } from './sync-standbys.js';
import { copiedColumns, dropGuardSql, dropPublicationSql } from './ddl.js';
import { dropRelaySql } from './truncate-relay.js';

/** The source schema holding the fence's trigger function (created by the promotion, kept with the fence). */
export const FENCE_SCHEMA = 'mirrors_fence';
export const FENCE_TRIGGER = 'mirrors_fenced';
/** A heartbeat older than this means no worker is streaming the mirror (status.ts uses the same 15 s). */
const HEARTBEAT_STALE_MS = 15_000;

export interface PromotionPlan {
  action: PromotionCreate | null;
  diagnostics: Diagnostic[];
}

/**
 * `others`: ids of the other actions planned for this mirror; a promotion goes alone, on a mirror whose
 * plan is otherwise empty. `drift`: drift diagnostics of its tables (any blocks it).
 */
export function planPromotion(
  m: Mirror,
  recorded: CatalogMirror,
  tables: CatalogTable[],
  src: PeerLive,
  dst: PeerLive,
  others: string[],
  drift: Diagnostic[],
): PromotionPlan {
  const at = addr.promotionAddress(m.name);
  const spec = m.promote!;
  const diagnostics: Diagnostic[] = [];
  const refuse = (code: 'MR170' | 'MR171' | 'MR172' | 'MR174' | 'MR175', message: string, hint: string) =>
    diagnostics.push(diag(code, at, message, hint));

  const age = recorded.heartbeatAgeMs ?? null;
  if (recorded.status !== 'Following' || !recorded.leaseHeld || age === null || age > HEARTBEAT_STALE_MS)
    refuse(
      'MR170',
      `mirror ${m.name} is ${recorded.status}${recorded.leaseHeld ? '' : ' with no worker holding its lease'}: a promotion needs it Following, under its lag threshold, with \`mirrors run\` streaming it`,
      'start `mirrors run` (restart one started before this mirror was declared: it does not stream mirrors added since), or fix what `mirrors status` reports; wait until it is Following, then plan again',
    );
  const id = recorded.sourceIdentity;
  if (id && (id.systemIdentifier !== src.systemIdentifier || id.databaseOid !== src.databaseOid))
    refuse(
      'MR174',
      `peer ${src.peer} is not the server and database mirror ${m.name} was created from (system identifier ${src.systemIdentifier ?? '?'}, database OID ${src.databaseOid ?? '?'}; recorded ${id.systemIdentifier}, ${id.databaseOid}): fencing it would not fence the writers`,
      "point the peer at the mirror's real source, or, if the source was restored or moved on purpose, resync the mirror",
    );
  const copying = uncopied(recorded, tables);
  if (copying)
    refuse(
      'MR171',
      `mirror ${m.name} is still being copied (${copying})`,
      'let `mirrors apply` finish the copy, then plan the promotion again',
    );
  if (drift.length)
    refuse(
      'MR172',
      `mirror ${m.name} has schema drift (${[...new Set(drift.map((d) => d.code))].join(', ')}): promoting would make the difference permanent`,
      'fix the drift first (the diagnostics above say how), then plan the promotion again',
    );
  if (others.length)
    refuse(
      'MR175',
      `mirror ${m.name} has other changes in this plan (${others.join(', ')}): a promotion is planned alone`,
      'apply the other changes first (without promote:), then add `promote:` and plan again',
    );
  // What mirroring removed from the destination tables (defaults, identity, sequences): the first application
  // insert on the new primary must work as it did on the source.
  const promoted: PromotedTable[] = tables.flatMap((t) => {
    const source = src.tables[tableKey(t.source)];
    return source ? [{ source, destination: t.destination, excludeColumns: t.excludeColumns }] : [];
  });
  const restore = promotionRestore(promoted, src, dst);
  const lacking = missingPrivileges(
    tables,
    restore.sequences.map((q) => q.destination.schema),
    { peer: src, readOnly: spec.read_only_source },
    dst,
  );
  diagnostics.push(...restoreDiagnostics(m, restore, lacking));
  if (diagnostics.length) return { action: null, diagnostics };

  const mapped: PromotionTable[] = tables.map((t) => ({ source: t.source, destination: t.destination }));
  diagnostics.push(writePause(m, recorded, mapped.length));
  // Stable, so a saved plan stays valid while the source writes: apply makes each marker unique.
  const fenceId = `mirror ${m.name}`;
  const action = promotionAction(m, src.peer, dst, {
    reason: `promote: true: peer ${dst.peer} becomes the primary of ${mapped.length} table${mapped.length === 1 ? '' : 's'}; ${spec.reverse ? `the source is fenced until it is mirror ${m.name}${REVERSE_SUFFIX} of it (the opening)` : 'the source is fenced for good'}`,
    reason_code: 'promotion_declared',
    risk: 'irreversible',
    before: { status: recorded.status, lag_ms: null },
    details: {
      fence_id: fenceId,
      tables: mapped,
      fence_sql: fenceSql(m.name, dst.peer, mapped),
      verify: spec.verify,
      verify_sql:
        spec.verify === 'none'
          ? []
          : tables.map((t) => {
              const live = src.tables[tableKey(t.source)];
              const columns = live ? copiedColumns(live, t.excludeColumns).map((c) => c.name) : [];
              return {
                source: verifySql(spec.verify as 'counts' | 'checksums', t.source, columns),
                destination: verifySql(spec.verify as 'counts' | 'checksums', t.destination, columns),
              };
            }),
      sequence_margin: spec.sequence_margin,
      sequences: plannedSequences(restore),
      source_version_num: src.serverVersionNum,
      // With a reverse mirror the guards stay until it exists (openPromotionAction): no write before its slot.
      restore_sql: [...(spec.reverse ? [] : mapped.map((t) => dropGuardSql(t.destination))), ...restore.sql],
      read_only_sql: spec.read_only_source ? [readOnlySql(src.database)] : [],
      reverse_mirror: spec.reverse ? `${m.name}${REVERSE_SUFFIX}` : null,
    },
  });
  return { action, diagnostics };
}

/**
 * What writers wait, said before anyone consents (a note: it moves with the lag, so a saved plan does not compare
 * it). From the fence until the destination applied the marker: the lag the worker last saw (the source's clock at
 * its last reading minus the oldest commit it had not applied), plus the fence's own statements; with a reverse
 * mirror, until the opening. Bounded by max_fence_wait, after which nothing changes.
 */
function writePause(m: Mirror, recorded: CatalogMirror, tables: number): Diagnostic {
  const spec = m.promote!;
  const pulse = recorded.sourceRecord?.pulse;
  const behind = recorded.appliedThrough?.behindSince;
  const lag = pulse && behind ? Math.max(0, Date.parse(pulse.at) - Date.parse(behind)) : 0;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  return diag(
    'MR185',
    addr.promotionAddress(m.name),
    `writers to the ${tables} mirrored table${tables === 1 ? '' : 's'} on peer ${m.source} wait from the fence until peer ${m.destination} has applied everything before it${spec.reverse ? ' and the reverse mirror exists' : ''}: expected about ${lag ? `${seconds(lag)} (the lag the worker last saw) plus ` : ''}the fence's own statements${lag ? '' : ' (the worker last saw no lag)'}${spec.verify === 'checksums' ? ' and reading every row for the checksums' : ''}; at most ${seconds(spec.max_fence_wait_ms)} (promote.max_fence_wait), after which nothing changes`,
    'readers are never blocked; lower the lag first (`mirrors status`) for a shorter pause',
  );
}

/**
 * The opening of a promotion with a reverse mirror, after the promotion's point of no return and the reverse
 * mirror's creation (its slot on the new primary holds every write from then on): on the old source the fence
 * triggers go, leaving the reverse mirror's MIRROR_READ_ONLY guard; then the new primary's guards go.
 */
export function openPromotionAction(
  m: Mirror,
  reverse: string,
  tables: PromotionTable[],
  src: PeerLive,
  dst: PeerLive,
  depends: string[],
): PromotionOpen {
  const at = addr.promotionAddress(m.name);
  return {
    id: `update:${at}`,
    kind: 'promotion',
    op: 'update',
    address: at,
    peer: dst.peer,
    mirror: m.name,
    reason: `open: peer ${dst.peer} takes writes; peer ${src.peer} becomes a read-only mirror of it (mirror ${reverse})`,
    reason_code: 'promotion_declared',
    risk: 'irreversible',
    before: { status: dst.catalog.mirrors[m.name]?.status ?? 'Following' },
    after: { primary: dst.peer, reverse_mirror: reverse },
    depends_on: depends,
    details: {
      source_peer: src.peer,
      destination_peer: dst.peer,
      reverse_mirror: reverse,
      source_sql: unfenceSql(tables),
      destination_sql: tables.map((t) => dropGuardSql(t.destination)),
      slot: addr.slotName(m.name),
      cleanup_sql: [dropPublicationSql(addr.publicationName(m.name)), ...dropRelaySql(m.name)],
    },
  };
}

/**
 * Disaster recovery (docs/promotion.md): the source cannot be reached, so nothing can be fenced, read or
 * cleaned up there. What the destination recorded of it (worker/source-facts.ts) restores the defaults and
 * sets the sequences; the plan says what may be lost, and `mirrors apply` runs it only with --allow-data-loss.
 * The mirror must have been copied completely: a half-copied table would become the primary's data.
 */
export function planPromotionWithoutSource(
  m: Mirror,
  recorded: CatalogMirror,
  tables: CatalogTable[],
  dst: PeerLive,
  unreachable: string,
): PromotionPlan {
  const at = addr.promotionAddress(m.name);
  const spec = m.promote!;
  const diagnostics: Diagnostic[] = [];
  const copying = uncopied(recorded, tables);
  if (copying)
    diagnostics.push(
      diag(
        'MR171',
        at,
        `mirror ${m.name} was still being copied when its source became unreachable (${copying}): its tables are not a copy of the source`,
        'restore the source from a backup instead; a mirror can be promoted only once every table is copied',
      ),
    );
  const facts = recorded.sourceRecord?.facts ?? null;
  const pulse = recorded.sourceRecord?.pulse ?? null;
  const recordedSource = {
    tables: Object.fromEntries((facts?.tables ?? []).map((t) => [tableKey(t), t])),
    sequences: Object.fromEntries((facts?.sequences ?? []).map((q) => [tableKey(q), q])),
    otherRelations: {},
  };
  const promoted: PromotedTable[] = tables.flatMap((t) => {
    const source = recordedSource.tables[tableKey(t.source)];
    return source ? [{ source, destination: t.destination, excludeColumns: t.excludeColumns }] : [];
  });
  const restore = promotionRestore(promoted, recordedSource, dst);
  const lacking = missingPrivileges(
    tables,
    restore.sequences.map((q) => q.destination.schema),
    null,
    dst,
  );
  diagnostics.push(...restoreDiagnostics(m, restore, lacking));
  if (spec.reverse)
    diagnostics.push(
      diag(
        'MR186',
        at,
        `mirror ${m.name} asks for a reverse mirror (promote.reverse), whose destination is the source that cannot be reached`,
        'remove `reverse: true`: without the source the promotion is one way (to mirror back later, declare a new mirror once the old source is back)',
      ),
    );
  if (!facts)
    diagnostics.push(
      diag(
        'MR182',
        at,
        `the destination has no record of the defaults and sequences of mirror ${m.name}'s source tables (no worker of this version streamed it): the new primary's tables get no defaults and no sequences back`,
        'after the promotion, recreate the defaults and sequences from the schema in your repository or a backup',
      ),
    );
  if (diagnostics.some((x) => x.severity === 'error')) return { action: null, diagnostics };

  const loss = lossEstimate(
    recorded,
    m.mode === 'sync'
      ? syncGuarantee(
          m.name,
          m.on_sync_loss,
          pulse?.sync,
          pulse?.at ?? '',
          recorded.sourceIdentity ? dst.catalog.syncStandbys?.[recorded.sourceIdentity.systemIdentifier] : undefined,
        )
      : null,
  );
  diagnostics.push(
    diag(
      'MR180',
      at,
      `peer ${m.source} cannot be reached (${unreachable}): mirror ${m.name} would be promoted WITHOUT a fence, and writes may be lost: ${describeLoss(loss, m.source)}`,
      `make sure peer ${m.source} is down for good (applications still writing to it would diverge from the new primary); then \`mirrors apply --allow-data-loss\` (valid for that one apply; without a terminal, with --auto-approve --allow-irreversible too)`,
    ),
  );
  const recordedValue = (q: { schema: string; name: string }) =>
    pulse?.sequences.find((v) => v.schema === q.schema && v.name === q.name) ?? null;
  const mapped: PromotionTable[] = tables.map((t) => ({ source: t.source, destination: t.destination }));
  const action = promotionAction(m, m.source, dst, {
    reason: `promote: true with peer ${m.source} unreachable: peer ${dst.peer} becomes the primary of ${mapped.length} table${mapped.length === 1 ? '' : 's'} without a fence; writes the destination never received are lost`,
    reason_code: 'promotion_without_source',
    risk: 'irreversible',
    before: { status: recorded.status, lag_ms: loss.window_ms },
    details: {
      tables: mapped,
      sequence_margin: spec.sequence_margin,
      sequences: plannedSequences(restore),
      source_version_num: facts?.server_version_num ?? 0,
      restore_sql: [
        ...mapped.map((t) => dropGuardSql(t.destination)),
        ...restore.sql,
        ...restore.sequences.map((q) => setvalWithoutSourceSql(q, recordedValue(q.source), spec.sequence_margin)),
      ],
      cleanup_sql: [], // nothing can be dropped on a source that cannot be reached
      without_source: { unreachable, loss, facts_at: facts?.at ?? null },
    },
  });
  return { action, diagnostics };
}

/**
 * A promotion action: what every kind of it shares, and empty details (nothing fenced, restored or read) that
 * `details` overrides.
 */
function promotionAction(
  m: Mirror,
  sourcePeer: string,
  dst: PeerLive,
  a: Pick<PromotionCreate, 'reason' | 'reason_code' | 'risk' | 'before'> & { details: Partial<PromotionDetails> },
): PromotionCreate {
  const at = addr.promotionAddress(m.name);
  return {
    id: `create:${at}`,
    kind: 'promotion',
    op: 'create',
    address: at,
    peer: dst.peer,
    mirror: m.name,
    reason: a.reason,
    reason_code: a.reason_code,
    risk: a.risk,
    before: a.before,
    after: { primary: dst.peer },
    depends_on: [],
    details: {
      source_peer: sourcePeer,
      destination_peer: dst.peer,
      fence_id: '',
      tables: [],
      fence_sql: [],
      max_fence_wait_ms: (m.promote ?? PROMOTE_DEFAULTS).max_fence_wait_ms,
      verify: 'none',
      verify_sql: [],
      sequence_margin: 0,
      sequences: [],
      source_version_num: 0,
      restore_sql: [],
      read_only_sql: [],
      cleanup_sql: [dropPublicationSql(addr.publicationName(m.name)), ...dropRelaySql(m.name)],
      slot: addr.slotName(m.name),
      without_source: null,
      fence_after: false,
      reverse_mirror: null,
      ...a.details,
    },
  };
}

/** Tables not copied yet ("public.t copying, ..." or "phase snapshot"), or null when the mirror is ready. */
function uncopied(recorded: CatalogMirror, tables: CatalogTable[]): string | null {
  const notReady = tables.filter((t) => t.state !== 'ready');
  if (recorded.phase === 'ready' && !notReady.length) return null;
  return notReady.length
    ? notReady.map((t) => `${t.destination.schema}.${t.destination.name} ${t.state}`).join(', ')
    : `phase ${recorded.phase}`;
}

/** MR176 and MR177: defaults and sequences that cannot be restored, privileges the roles lack. */
function restoreDiagnostics(
  m: Mirror,
  restore: PromotionRestore,
  lacking: { what: string; fix: string }[],
): Diagnostic[] {
  const at = addr.promotionAddress(m.name);
  const out: Diagnostic[] = [];
  if (restore.problems.length)
    out.push(
      diag(
        'MR176',
        at,
        `the destination tables of mirror ${m.name} cannot get back their defaults and sequences: ${restore.problems.map((p) => p.message).join('; ')}`,
        'fix what is named (a sequence name taken on the destination, a missing table or column), then plan again',
      ),
    );
  if (lacking.length)
    out.push(
      diag(
        'MR177',
        at,
        `the promotion of mirror ${m.name} needs privileges the roles do not have: ${lacking.map((l) => l.what).join('; ')}`,
        lacking.map((l) => l.fix).join(' '),
      ),
    );
  return out;
}

/** The restored sequences as the plan carries them. */
function plannedSequences(restore: PromotionRestore): PromotionDetails['sequences'] {
  return restore.sequences.map((q) => ({
    source: q.source,
    destination: q.destination,
    increment: q.increment,
    min: q.min,
    max: q.max,
  }));
}

/**
 * What the fence and the point of no return need: on the source, ownership of each table (CREATE TRIGGER,
 * ALTER TABLE ... ENABLE ALWAYS TRIGGER) and a schema for the fence's function; on the destination, ownership
 * of each table (DROP TRIGGER, ALTER COLUMN ... SET DEFAULT) and CREATE where sequences are created.
 * Absent facts (constructed test values) count as granted, as in checks.ts.
 */
function missingPrivileges(
  tables: CatalogTable[],
  sequenceSchemas: string[],
  source: { peer: PeerLive; readOnly: boolean } | null,
  dst: PeerLive,
) {
  const src = source?.peer;
  const out: { what: string; fix: string }[] = [];
  const owner = (p: PeerLive, q: { schema: string; name: string }) => {
    const t = p.tables[tableKey(q)];
    if (t?.owned === false)
      out.push({
        what: `role ${p.role.name} on peer ${p.peer} does not own ${q.schema}.${q.name} (owner ${t.owner ?? '?'})`,
        fix: `ALTER TABLE ${quoteQualified(q.schema, q.name)} OWNER TO ${quoteIdent(p.role.name)};`,
      });
  };
  if (src) {
    for (const t of tables) owner(src, t.source);
    if (!src.schemas?.[FENCE_SCHEMA] && !src.role.canCreateInDatabase)
      out.push({
        what: `role ${src.role.name} cannot create schema ${FENCE_SCHEMA} (the fence's function) on peer ${src.peer}`,
        fix: `GRANT CREATE ON DATABASE ${quoteIdent(src.database)} TO ${quoteIdent(src.role.name)};`,
      });
    if (src.role.canEmitMessage === false)
      out.push({
        what: `role ${src.role.name} may not execute pg_logical_emit_message (the fence's marker) on peer ${src.peer}`,
        fix: `GRANT EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text) TO ${quoteIdent(src.role.name)};`,
      });
    if (source.readOnly && src.role.ownsDatabase === false)
      out.push({
        what: `role ${src.role.name} does not own database ${src.database} on peer ${src.peer} (promote.read_only_source runs ALTER DATABASE ... SET default_transaction_read_only)`,
        fix: `ALTER DATABASE ${quoteIdent(src.database)} OWNER TO ${quoteIdent(src.role.name)}; or leave read_only_source off and run ${readOnlySql(src.database)} as its owner after the promotion.`,
      });
  }
  for (const t of tables) owner(dst, t.destination);
  for (const schema of new Set(sequenceSchemas)) {
    const s = dst.schemas?.[schema];
    if (s && !s.create)
      out.push({
        what: `role ${dst.role.name} cannot create sequences in schema ${schema} on peer ${dst.peer}`,
        fix: `GRANT CREATE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(dst.role.name)};`,
      });
  }
  return out;
}

/**
 * What a promotion left on its source, finished by the same action (its executor does only this for a promoted
 * mirror): the slot (holding WAL) and the publication of an apply that died after the point of no return, and,
 * after a promotion without the source that answers again, the fence, so that a stale application gets
 * MIRROR_FENCED instead of writing where no one reads (its worker refuses it: the catalog says Promoted).
 */
export function finishPromotion(
  m: Mirror,
  recorded: CatalogMirror,
  tables: CatalogTable[],
  src: PeerLive,
  dst: PeerLive,
): PromotionCreate | null {
  const slot = addr.slotName(m.name);
  const publication = addr.publicationName(m.name);
  const fenceAfter = recorded.promotion?.unfenced === true && recorded.promotion.source_fenced !== true;
  if (!src.slots[slot] && !src.publications[publication] && !fenceAfter) return null;
  const mapped: PromotionTable[] = fenceAfter
    ? tables
        .filter((t) => src.tables[tableKey(t.source)])
        .map((t) => ({ source: t.source, destination: t.destination }))
    : [];
  const what = [
    ...(fenceAfter ? [`fence its ${mapped.length} table${mapped.length === 1 ? '' : 's'}`] : []),
    ...(src.slots[slot] ? ['drop its slot'] : []),
    ...(src.publications[publication] ? ['drop its publication'] : []),
  ];
  return promotionAction(m, src.peer, dst, {
    reason: `finish the promotion of mirror ${m.name} on its old source, peer ${src.peer}: ${what.join(', ')}`,
    reason_code: 'promotion_unfinished',
    // The slot holds the WAL of whatever the old source committed that the new primary never received.
    risk: src.slots[slot] ? 'irreversible' : 'safe',
    before: { status: 'Promoted', lag_ms: null },
    details: {
      tables: mapped,
      fence_sql: fenceAfter ? fenceSql(m.name, dst.peer, mapped) : [],
      source_version_num: src.serverVersionNum,
      read_only_sql: m.promote?.read_only_source ? [readOnlySql(src.database)] : [],
      fence_after: fenceAfter,
    },
  });
}

/**
 * The fence, in order, for one open transaction on the source: the function (once per database), the lock,
 * a trigger per table enabled ALWAYS. The marker is the executor's (it returns the fence's position).
 */
export function fenceSql(mirror: string, newPrimary: string, tables: PromotionTable[]): string[] {
  const names = tables.map((t) => quoteQualified(t.source.schema, t.source.name));
  const fn = `${quoteIdent(FENCE_SCHEMA)}.reject`;
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(FENCE_SCHEMA)}`,
    `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'MIRROR_FENCED: %.% was promoted to peer % (mirror %): this copy no longer takes writes',
    quote_ident(TG_TABLE_SCHEMA), quote_ident(TG_TABLE_NAME), TG_ARGV[1], TG_ARGV[0]
    USING ERRCODE = 'read_only_sql_transaction', HINT = 'write to the new primary, peer ' || TG_ARGV[1];
END
$fn$`,
    `LOCK TABLE ${names.join(', ')} IN EXCLUSIVE MODE`,
    ...names.flatMap((n) => [
      `CREATE TRIGGER ${quoteIdent(FENCE_TRIGGER)} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${n} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}(${quoteLiteral(mirror)}, ${quoteLiteral(newPrimary)})`,
      `ALTER TABLE ${n} ENABLE ALWAYS TRIGGER ${quoteIdent(FENCE_TRIGGER)}`,
    ]),
  ];
}

/**
 * The old source refuses writes in new sessions of its database, so libpq clients with
 * target_session_attrs=read-write and both hosts in their connection string pick the new primary.
 */
export function readOnlySql(database: string): string {
  return `ALTER DATABASE ${quoteIdent(database)} SET default_transaction_read_only = on`;
}

/** Undoes a committed fence when the point of no return failed: the source takes writes again. */
export function unfenceSql(tables: PromotionTable[]): string[] {
  return tables.map(
    (t) => `DROP TRIGGER IF EXISTS ${quoteIdent(FENCE_TRIGGER)} ON ${quoteQualified(t.source.schema, t.source.name)}`,
  );
}
