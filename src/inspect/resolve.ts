/**
 * Expands each mirror's table mappings against the source's live tables: `schema.*` becomes one mapping
 * per table of that schema (an explicit mapping of the same table wins). Pure.
 */
import { tableKey, displayIdent, type QualifiedName } from '../config/names.js';
import type { Mirror, SourcePos } from '../config/types.js';
import type { PeerLive } from './types.js';
import type { Diagnostic } from '../plan/types.js';
import { diag } from '../plan/diagnostics.js';
import { mirrorAddress } from '../plan/address.js';

export interface ResolvedTable {
  mirror: string;
  source: QualifiedName;
  destination: QualifiedName;
  excludeColumns: string[];
  partitionKey: string | null;
  pos: SourcePos;
  fromWildcard: boolean;
}

export function resolveMirrorTables(
  mirror: Mirror,
  source: PeerLive | undefined,
): { tables: ResolvedTable[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const explicit: ResolvedTable[] = [];
  const explicitSources = new Set<string>();
  for (const m of mirror.tables) {
    if (m.source.kind !== 'table') continue;
    const src = { schema: m.source.schema, name: m.source.name };
    explicitSources.add(tableKey(src));
    explicit.push({
      mirror: mirror.name,
      source: src,
      destination: m.destination ?? src,
      excludeColumns: [...m.exclude_columns],
      partitionKey: m.partition_key ?? null,
      pos: m.pos,
      fromWildcard: false,
    });
  }
  const expanded: ResolvedTable[] = [];
  for (const m of mirror.tables) {
    if (m.source.kind !== 'schema') continue;
    const schema = m.source.schema;
    const matches = source
      ? Object.values(source.tables)
          .filter((t) => t.schema === schema && !explicitSources.has(tableKey(t)))
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      : [];
    // Matching nothing: the schema has no table at all (tables also mapped explicitly still count).
    if (source && !Object.values(source.tables).some((t) => t.schema === schema)) {
      diagnostics.push(
        diag(
          'MR141',
          mirrorAddress(mirror.name),
          `${displayIdent(schema)}.* matches no table on the source`,
          `check the schema name at ${m.pos.file}:${m.pos.line}:${m.pos.col}; if the schema has no table yet, remove the mapping until it has one (nothing is created meanwhile)`,
        ),
      );
    }
    for (const t of matches) {
      const q = { schema: t.schema, name: t.name };
      explicitSources.add(tableKey(q));
      expanded.push({
        mirror: mirror.name,
        source: q,
        destination: q,
        excludeColumns: [...m.exclude_columns],
        partitionKey: m.partition_key ?? null,
        pos: m.pos,
        fromWildcard: true,
      });
    }
  }
  return { tables: [...explicit, ...expanded], diagnostics };
}
