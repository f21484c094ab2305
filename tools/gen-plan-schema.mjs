/**
 * Writes schemas/plan.schema.json, the JSON Schema of the plan file (docs/plan-json.md): `node tools/gen-plan-schema.mjs`.
 * The schema states the shapes of src/plan/types.ts for the file on disk; edit both together. A unit test
 * (test/unit/plan-contract.test.ts) checks that the committed schema is what this script writes, and that every
 * action type the diff produces validates against it.
 */
import { writeFileSync } from 'node:fs';
const str = { type: 'string' };
const nstr = { type: ['string', 'null'] };
const int = { type: 'integer', minimum: 0 };
const bool = { type: 'boolean' };
const digits = { type: 'string', pattern: '^-?[0-9]+$' };
const nul = { type: 'null' };
const arr = (items) => ({ type: 'array', items });
const obj = (properties, required = Object.keys(properties)) => ({ type: 'object', additionalProperties: false, required, properties });
const ref = (n) => ({ $ref: `#/$defs/${n}` });
const sql = arr(str);

const defs = {
  qualified: obj({ schema: str, name: str }),
  table_spec: obj({
    source: ref('qualified'), destination: ref('qualified'),
    columns: arr(obj({ name: str, type: str, not_null: bool })),
    primary_key: arr(str), exclude_columns: arr(str), partition_key: nstr,
    estimated_rows: digits, size_bytes: digits,
    swap: obj({ shadow: ref('qualified'), prepare: sql, after_load: sql, swap: sql, after_swap: sql, carried: arr(str) }),
  }, ['source', 'destination', 'columns', 'primary_key', 'exclude_columns', 'partition_key', 'estimated_rows', 'size_bytes']),
  published_table: obj({ schema: str, name: str, columns: { type: ['array', 'null'], items: str } }),
  settings: obj({
    mode: { enum: ['async', 'sync'] }, do_initial_snapshot: bool,
    snapshot_num_rows_per_partition: int, snapshot_max_parallel_workers: int, snapshot_num_tables_in_parallel: int,
    max_batch_size: int, idle_timeout_seconds: int, replicate_indexes: bool, replicate_foreign_keys: bool,
    resync_strategy: { enum: ['truncate', 'merge', 'swap'] }, schema_changes: { enum: ['plan', 'auto'] },
    dropped_columns: { enum: ['drop', 'keep'] }, keep_read_only: bool, lag_threshold_ms: int, paused: bool, prevent_destroy: bool, sync_quorum: int,
    on_sync_loss: { oneOf: [{ const: 'block' }, obj({ degrade_after_ms: int })] },
  }),
  partial_settings: { $comment: 'changed settings only: the same keys as settings, none required' },
  sql,
  version: obj({ version: int }),
  slot_after: obj({ name: str, plugin: { const: 'pgoutput' } }),
  table_attributes: obj({ partition_key: nstr, read_only: bool }, []),
  promoted_table: obj({ source: ref('qualified'), destination: ref('qualified') }),
};
defs.partial_settings = { ...defs.settings, required: [] };
delete defs.partial_settings.$comment;

const versions = obj({ from_version: int, to_version: int, migrations: arr(obj({ version: int, name: str })) });
const sqlOnly = obj({ sql: ref('sql') });
const count = obj({ count: int });
const tableSource = obj({ source: str, exclude_columns: arr(str) });

// kind -> op -> [details, before, after]
const ACTIONS = {
  catalog: { create: [versions, nul, ref('version')], update: [versions, ref('version'), ref('version')] },
  schema: { create: [sqlOnly, nul, obj({ schema: str })] },
  extension: { create: [sqlOnly, nul, obj({ extension: str })] },
  type: { create: [sqlOnly, nul, obj({ kind: str, labels: arr(str) }, ['kind'])] },
  mirror: {
    create: [
      obj({ source_peer: str, destination_peer: str, project: str, settings: ref('settings'), mirror_hash: str, slot: str, publication: str }),
      nul,
      { allOf: [ref('settings_with_peers')] },
    ],
    update: [obj({ settings: ref('settings'), mirror_hash: str }), ref('partial_settings'), ref('partial_settings')],
    delete: [obj({ sql: ref('sql'), kept_tables: arr(ref('qualified')) }), obj({ source: str, tables: int }), nul],
  },
  publication: {
    create: [obj({ name: str, tables: arr(ref('published_table')), sql: ref('sql') }), nul, obj({ name: str, tables: arr(str), relayed_partitions: arr(str) }, ['name', 'tables'])],
    update: [
      obj({ name: str, tables: arr(ref('published_table')), sql: ref('sql') }),
      obj({ tables: arr(str), relayed_partitions: arr(str) }, ['tables']),
      obj({ tables: arr(str), relayed_partitions: arr(str) }, ['tables']),
    ],
    delete: [obj({ name: str, sql: ref('sql') }), obj({ name: str }), nul],
  },
  slot: {
    create: [obj({ name: str, create_command: str, tables: { enum: ['copy', 'merge'] } }), nul, ref('slot_after')],
    replace: [
      obj({ name: str, drop_sql: str, create_command: str, tables: { enum: ['copy', 'merge'] } }),
      obj({ wal_status: str }),
      ref('slot_after'),
    ],
    delete: [obj({ name: str, drop_sql: str }), obj({ name: str, retained_bytes: { oneOf: [digits, nul] } }), nul],
  },
  table: {
    create: [
      obj({ spec: ref('table_spec'), create_table: bool, sql: ref('sql') }), nul,
      obj({ source: str, columns: int, key: arr(str), exclude_columns: arr(str) }),
    ],
    update: [obj({ spec: ref('table_spec'), sql: ref('sql') }), ref('table_attributes'), ref('table_attributes')],
    replace: [
      {
        oneOf: [
          obj({ spec: ref('table_spec'), strategy: { enum: ['truncate', 'swap'] } }),
          obj({ spec: ref('table_spec'), strategy: { const: 'merge' }, key: arr(str), chunk_rows: int }),
        ],
      },
      tableSource,
      tableSource,
    ],
    delete: [obj({ sql: ref('sql'), destination: ref('qualified') }), obj({ source: str }), nul],
  },
  columns: {
    update: [
      obj({
        table: ref('qualified'), sql: ref('sql'),
        steps: arr(obj({ change: { enum: ['add', 'rename', 'drop', 'keep', 'retype'] }, column: str, summary: str })),
        kept_columns: arr(str), at_lsn: str, copy: nstr, spec: ref('table_spec'),
      }),
      obj({ columns: arr(str) }),
      obj({ columns: arr(str) }),
    ],
  },
  snapshot: {
    create: [
      obj({
        kind: { enum: ['initial', 'full', 'tables'] }, copy: bool, tables: arr(ref('table_spec')),
        parallelism: obj({ tables_in_parallel: int, max_workers: int, rows_per_partition: int }),
      }),
      nul,
      obj({ tables: arr(str), estimated_rows: digits, estimated_bytes: digits }),
    ],
  },
  indexes: { create: [sqlOnly, nul, count] },
  foreign_keys: { create: [sqlOnly, nul, count] },
  stream: { create: [obj({}), nul, nul] },
  sync_standbys: {
    update: [
      obj({
        source_system_identifier: str, value: str, sql: ref('sql'), record_on: arr(str), waiting_databases: arr(str),
        role_overrides: arr(obj({ role: str, database: nstr, setting: str, waits: bool })),
      }),
      obj({ value: str, members: arr(str) }),
      obj({ value: str, members: arr(str) }),
    ],
  },
  promotion: {
    create: [
      obj({
        source_peer: str, destination_peer: str, fence_id: str, tables: arr(ref('promoted_table')),
        fence_sql: ref('sql'), max_fence_wait_ms: int, verify: { enum: ['none', 'counts', 'checksums'] }, verify_sql: arr(obj({ source: str, destination: str })), sequence_margin: int,
        sequences: arr(obj({ source: ref('qualified'), destination: ref('qualified'), increment: digits, min: digits, max: digits })),
        source_version_num: int, restore_sql: ref('sql'), read_only_sql: ref('sql'), cleanup_sql: ref('sql'), slot: str,
        without_source: {
          oneOf: [
            nul,
            obj({
              unreachable: str,
              loss: obj({
                applied_through: nstr, source_last_seen: nstr, window_ms: { type: ['integer', 'null'], minimum: 0 },
                unapplied_wal_bytes: { type: ['string', 'null'], pattern: '^[0-9]+$' },
                commits_per_s: { type: ['number', 'null'], minimum: 0 }, transactions: { type: ['integer', 'null'], minimum: 0 },
                synchronous: nstr,
              }),
              facts_at: nstr,
            }),
          ],
        },
        fence_after: bool, reverse_mirror: nstr,
      }),
      obj({ status: str, lag_ms: { type: ['integer', 'null'] } }),
      obj({ primary: str }),
    ],
    update: [
      obj({ source_peer: str, destination_peer: str, reverse_mirror: str, source_sql: ref('sql'), destination_sql: ref('sql'), slot: str, cleanup_sql: ref('sql') }),
      obj({ status: str }),
      obj({ primary: str, reverse_mirror: str }),
    ],
  },
};
defs.settings_with_peers = {
  ...defs.settings,
  properties: { source: str, destination: str, ...defs.settings.properties },
  required: ['source', 'destination', ...defs.settings.required],
};

const REASONS = ['catalog_missing', 'catalog_outdated', 'new_mirror', 'setting_changed', 'mirror_removed', 'table_added',
  'table_removed', 'table_changed', 'table_source_changed', 'table_not_copied', 'schema_missing', 'type_missing',
  'extension_missing', 'publication_missing', 'publication_changed', 'slot_missing', 'slot_lost', 'promotion_declared',
  'promotion_without_source', 'promotion_unfinished', 'replace_requested', 'schema_changed'];

const pairs = [];
const rules = [];
for (const [kind, ops] of Object.entries(ACTIONS)) {
  for (const [op, [details, before, after]] of Object.entries(ops)) {
    pairs.push({ properties: { kind: { const: kind }, op: { const: op } } });
    const peerWide = ['catalog', 'schema', 'extension', 'type', 'sync_standbys'].includes(kind);
    rules.push({
      if: { properties: { kind: { const: kind }, op: { const: op } }, required: ['kind', 'op'] },
      then: { properties: { details, before, after, mirror: peerWide ? nul : { type: 'string', minLength: 1 } } },
    });
  }
}
defs.action = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'kind', 'op', 'address', 'peer', 'mirror', 'reason', 'reason_code', 'risk', 'before', 'after', 'depends_on', 'details'],
  properties: {
    id: { type: 'string', pattern: '^(create|update|delete|replace):' },
    kind: { enum: Object.keys(ACTIONS) },
    op: { enum: ['create', 'update', 'delete', 'replace'] },
    address: { type: 'string', minLength: 1 },
    peer: { type: 'string', minLength: 1 },
    mirror: nstr,
    reason: str,
    reason_code: { enum: REASONS },
    risk: { enum: ['safe', 'disruptive', 'irreversible'] },
    before: {},
    after: {},
    depends_on: { type: 'array', items: str, uniqueItems: true },
    details: { type: 'object' },
  },
  anyOf: pairs,
  allOf: rules,
};
// diff: schema drift (MR150-MR159) only, a unified diff of the source and destination table definitions.
defs.diagnostic = obj(
  { code: { type: 'string', pattern: '^MR[0-9]{3}$' }, severity: { enum: ['error', 'warning', 'note'] }, address: str, message: str, hint: str, diff: str, position: obj({ line: int, col: int }) },
  ['code', 'severity', 'address', 'message', 'hint'],
);

const schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://mirrors.dev/schemas/plan.schema.json',
  title: 'mirrors plan file, format 2',
  description: 'What `mirrors plan --out FILE` writes and `mirrors apply FILE` and `mirrors show FILE` read. See docs/plan-json.md.',
  type: 'object',
  additionalProperties: false,
  required: ['format_version', 'tool', 'created_by', 'config_file', 'config_hash', 'project', 'selected', 'mirrors', 'diagnostics', 'actions', 'summary'],
  properties: {
    format_version: { const: 2 },
    tool: { const: 'mirrors' },
    created_by: str,
    config_file: str,
    config_hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    project: str,
    selected: { type: ['array', 'null'], items: str },
    replace: arr(str),
    mirrors: arr(obj({ name: str, source: str, destination: str })),
    diagnostics: arr(ref('diagnostic')),
    actions: arr(ref('action')),
    summary: obj({ create: int, update: int, delete: int, replace: int }),
  },
  $defs: defs,
};
const target = process.argv[2] ?? new URL('../schemas/plan.schema.json', import.meta.url);
writeFileSync(target, JSON.stringify(schema, null, 2) + '\n');
