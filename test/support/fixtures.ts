/** Constructed Config and Live values for the pure stages' unit tests. */
import type { Config, Mirror, Peer } from '../../src/config/types.js';
import type {
  StandbyNamesFacts,
  LiveColumn,
  LiveSequence,
  LiveSwapFacts,
  LiveTable,
  PeerLive,
  CatalogMirror,
  CatalogTable,
} from '../../src/inspect/types.js';
import { tableKey } from '../../src/config/names.js';
import { builtinSettings } from '../../src/config/settings.js';
import { settingsOf } from '../../src/diff/settings.js';
import { CATALOG_VERSION } from '../../src/catalog/migrations.js';

export function peer(name: string, database = 'app'): Peer {
  return { name, host: '127.0.0.1', port: name === 'prod' ? 5432 : 5433, database, user: 'mirrors', sslmode: 'prefer' };
}

export function mirror(name: string, tables: string[], over: Partial<Mirror> = {}): Mirror {
  return {
    name,
    source: 'prod',
    destination: 'staging',
    ...builtinSettings(),
    tables: tables.map((t, i) => {
      const [schema, n] = t.split('.');
      return n === '*'
        ? { source: { kind: 'schema' as const, schema }, exclude_columns: [], pos: pos(i) }
        : {
            source: { kind: 'table' as const, schema, name: n },
            destination: { schema, name: n },
            exclude_columns: [],
            pos: pos(i),
          };
    }),
    promote: null,
    pos: pos(0),
    ...over,
  };
}

function pos(i: number) {
  return { file: '/x/mirrors.yaml', line: 10 + i, col: 9, path: `mirrors.m.tables[${i}]` };
}

export function config(mirrors: Mirror[]): Config {
  return {
    file: '/x/mirrors.yaml',
    version: 1,
    project: 'default',
    projectDeclared: true,
    peers: { prod: peer('prod'), staging: peer('staging') },
    mirrors: Object.fromEntries(mirrors.map((m) => [m.name, m])),
    hash: 'cafe'.repeat(16),
  };
}

export function col(name: string, type = 'integer', over: Partial<LiveColumn> = {}): LiveColumn {
  return { name, type, notNull: false, hasDefault: false, identity: '', generated: '', ...over };
}

/** Columns numbered 1.. as a table created with them has them (attnum), for drift's position rules. */
export function numbered(columns: LiveColumn[]): LiveColumn[] {
  return columns.map((c, i) => ({ ...c, attnum: i + 1 }));
}

export function table(
  q: string,
  columns: LiveColumn[] = [col('id', 'bigint', { notNull: true }), col('name', 'text')],
  over: Partial<LiveTable> = {},
): LiveTable {
  const [schema, name] = q.split('.');
  const pk =
    over.primaryKey === undefined
      ? { name: `${name}_pkey`, columns: [columns[0].name], deferrable: false }
      : over.primaryKey;
  return {
    schema,
    name,
    oid: String(16384 + name.length),
    kind: 'r',
    isPartition: false,
    columns,
    primaryKey: pk,
    replicaIdentity: 'd',
    replicaIdentityColumns: [],
    indexes: pk
      ? [
          {
            name: pk.name,
            definition: `CREATE UNIQUE INDEX ${pk.name} ON ${q} USING btree (${pk.columns.join(', ')})`,
            unique: true,
            primary: true,
            columns: pk.columns,
          },
        ]
      : [],
    foreignKeys: [],
    estimatedRows: '100',
    sizeBytes: '8192',
    canSelect: true,
    ...over,
  };
}

export function livePeer(name: string, tables: LiveTable[] = [], over: Partial<PeerLive> = {}): PeerLive {
  return {
    peer: name,
    serverVersionNum: 150018,
    serverVersion: '15.18',
    database: 'app',
    settings: {
      wal_level: 'logical',
      max_replication_slots: 10,
      max_wal_senders: 10,
      max_slot_wal_keep_size: 10240,
      synchronous_standby_names: '',
    },
    role: { name: 'mirrors', superuser: false, replication: true, canCreateInDatabase: true },
    slotsInUse: 0,
    walSendersInUse: 0,
    schemas: Object.fromEntries(
      [...new Set(['public', ...tables.map((t) => t.schema)])].map((n) => [
        n,
        { name: n, owner: 'mirrors', owned: true, usage: true, create: true },
      ]),
    ),
    publications: {},
    slots: {},
    tables: Object.fromEntries(tables.map((t) => [tableKey(t), t])),
    types: {},
    extensions: { installed: ['plpgsql'], available: ['plpgsql', 'hstore'] },
    catalog: { version: 0, mirrors: {}, tables: [] },
    ...over,
  };
}

/** The live state right after a successful apply of mirror `m` with the given tables. */
export function applied(m: Mirror, src: PeerLive, dst: PeerLive, tables: string[]): void {
  const rec: CatalogMirror = {
    name: m.name,
    sourcePeer: m.source,
    project: 'default',
    mode: m.mode,
    status: 'Following',
    phase: 'ready',
    paused: m.paused,
    settings: settingsOf(m) as unknown as Record<string, unknown>,
    configHash: 'cafe',
    consistentLsn: '0/1000',
    lastAppliedLsn: '0/2000',
    bytesDone: '0',
    bytesTotal: '0',
  };
  dst.catalog = {
    version: CATALOG_VERSION,
    mirrors: { ...dst.catalog.mirrors, [m.name]: rec },
    tables: [...dst.catalog.tables],
  };
  const pubTables = [];
  for (const q of tables) {
    const [schema, name] = q.split('.');
    const t: CatalogTable = {
      mirror: m.name,
      source: { schema, name },
      destination: { schema, name },
      excludeColumns: [],
      partitionKey: null,
      state: 'ready',
      snapshotLsn: '0/1000',
      rowsCopied: '100',
      bytesCopied: '8192',
      keptColumns: [],
      pendingSchemaChange: null,
      lastSchemaChange: null,
    };
    dst.catalog.tables.push(t);
    pubTables.push({ schema, name, columns: null, rowFilter: null });
    const s = src.tables[tableKey({ schema, name })];
    if (s) dst.tables[tableKey({ schema, name })] = { ...s, hasRows: true };
  }
  src.publications[`mirrors_${m.name}`] = {
    name: `mirrors_${m.name}`,
    owner: 'mirrors',
    allTables: false,
    viaRoot: true,
    tables: pubTables,
    comment: null,
  };
  src.slots[`mirrors_${m.name}`] = {
    name: `mirrors_${m.name}`,
    plugin: 'pgoutput',
    slotType: 'logical',
    database: 'app',
    active: false,
    activePid: null,
    temporary: false,
    confirmedFlushLsn: '0/2000',
    restartLsn: '0/1F00',
    walStatus: 'reserved',
    retainedBytes: '256',
  };
  src.slotsInUse++;
}

/** A bigint sequence as CREATE SEQUENCE makes it, named `schema.name`; `regclass` is how a default writes a plain name. */
export function sequence(q: string, over: Partial<LiveSequence> = {}): LiveSequence {
  const [schema, name] = q.split('.');
  return {
    schema,
    name,
    regclass: q,
    dataType: 'bigint',
    start: '1',
    increment: '1',
    min: '1',
    max: '9223372036854775807',
    cache: '1',
    cycle: false,
    ownedBy: null,
    defaultOf: [],
    ...over,
  };
}

/** The column `column` of table `q` (schema.table), as a sequence's owner or user names it. */
export function seqColumn(q: string, column: string) {
  const [schema, table] = q.split('.');
  return { schema, table, column };
}

/** A column whose default calls nextval of the sequence with this regclass text, as pg_get_expr writes it. */
export function nextvalColumn(name: string, regclass: string, type = 'bigint'): LiveColumn {
  return col(name, type, {
    notNull: true,
    hasDefault: true,
    default: `nextval('${regclass.replace(/'/g, "''")}'::regclass)`,
  });
}

/** What inspection reads of synchronous_standby_names on a source: by default empty, ours to write; override any part. */
export function standbyNamesFacts(over: Partial<StandbyNamesFacts> = {}): StandbyNamesFacts {
  return {
    setting: '',
    source: 'default',
    sourcefile: null,
    sourceline: null,
    fileSettings: [],
    allowAlterSystem: null,
    mayAlterSystem: true,
    commitScope: { setting: 'on', source: 'default', databases: [], roles: [] },
    ...over,
  };
}

/** SWAP_FACTS_SQL's row for a plain table with a primary key `<name>_pkey` on id and nothing else. */
export function swapFacts(q: string, over: Partial<LiveSwapFacts> = {}): LiveSwapFacts {
  const [schema, name] = q.split('.');
  return {
    quoted: `${schema}.${name}`,
    owner: 'mirrors',
    comment: null,
    columnComments: [],
    grants: [],
    rowSecurity: false,
    forceRowSecurity: false,
    policies: [],
    replicaIdentity: 'd',
    replicaIdentityIndex: null,
    triggers: [],
    indexes: [],
    constraints: [{ name: `${name}_pkey`, type: 'p', definition: 'PRIMARY KEY (id)', validated: true }],
    statistics: [],
    sequences: [],
    dependents: [],
    ...over,
  };
}
