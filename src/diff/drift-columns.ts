/**
 * Which columns of a mirrored table differ between its source and its destination, and how: the pure core of
 * schema drift (drift.ts), shared by `mirrors plan` and the streaming worker. No I/O.
 *
 * The catalog does not record the source's columns as they were when the table was copied, so added, dropped
 * and renamed columns are told apart by where they sit, using what Postgres keeps about a column:
 * - A rename keeps the column's attnum (and its place); ADD COLUMN gives the new column an attnum above every
 *   other one, live or dropped, so it comes last; DROP COLUMN leaves a dropped attnum behind.
 * - Columns both sides have anchor the two lists. Within one gap between anchors, exactly one column only the
 *   destination has and one only the source has are one column renamed (MR152). In the tail gap that pair is
 *   read as dropped and added instead when a dropped attnum lies between the last anchor and the source column
 *   (a column dropped before the table was copied, in that same gap, makes it read so too: the diff still shows
 *   the truth).
 * - A column only the source has that sits before an anchor existed when the table was copied: the destination
 *   lost it (`lost`, MR158). One that comes last was added on the source (MR150).
 * - A column only the destination has is one the source dropped (MR151) when the source table has dropped any
 *   column; when it never did, the destination gained it by hand (`extra`, MR158).
 * Without attnums (the worker's Relation message) the same rules go by list position alone.
 */

/** A column as drift compares it. `type` includes a non-default collation (`text COLLATE "C"`). */
export interface ColumnFacts {
  name: string;
  type: string;
  notNull?: boolean;
  /** The default expression, or the generation expression of a generated column. */
  default?: string | null;
  generated?: boolean;
  attnum?: number;
}

export type ColumnChange =
  | { kind: 'added'; source: ColumnFacts }
  | { kind: 'lost'; source: ColumnFacts }
  | { kind: 'dropped'; destination: ColumnFacts }
  | { kind: 'extra'; destination: ColumnFacts }
  | { kind: 'renamed'; source: ColumnFacts; destination: ColumnFacts }
  | { kind: 'type' | 'not_null' | 'default'; source: ColumnFacts; destination: ColumnFacts };

export interface ColumnSides {
  /** Every live column of the source table in attnum order, excluded ones included (their attnums count). */
  source: ColumnFacts[];
  destination: ColumnFacts[];
  /** Excluded by the mapping: on neither side (an adopted destination table may keep them). */
  excluded: string[];
  /** How many dropped columns the source table carries; undefined: unknown (then a missing one reads as dropped). */
  sourceDropped?: number;
  /** Compare NOT NULL and defaults too (the worker's Relation message carries neither). */
  constraints: boolean;
}

interface Placed {
  column: ColumnFacts;
  /** Name of the nearest column before it that both sides have ('' at the start). */
  gap: string;
  /** Whether a column both sides have comes after it. */
  beforeAnchor: boolean;
}

/** The differences, in source column order (destination-only columns after, in theirs). */
export function compareColumns(sides: ColumnSides): ColumnChange[] {
  const excluded = new Set(sides.excluded);
  const src = excluded.size ? sides.source.filter((c) => !excluded.has(c.name)) : sides.source;
  const dst = excluded.size ? sides.destination.filter((c) => !excluded.has(c.name)) : sides.destination;
  // The common case, every plan and every Relation message: the same names in the same order.
  if (src.length === dst.length && src.every((c, i) => c.name === dst[i].name)) {
    return src.flatMap((c, i) => columnChanges(c, dst[i], sides.constraints));
  }
  const dstByName = new Map(dst.map((c) => [c.name, c]));
  const common = new Set(src.filter((c) => dstByName.has(c.name)).map((c) => c.name));
  const onlySource = place(src, common);
  const onlyDestination = place(dst, common);

  const gaps = new Map<string, { source: Placed[]; destination: Placed[] }>();
  const gap = (key: string) => gaps.get(key) ?? gaps.set(key, { source: [], destination: [] }).get(key)!;
  for (const x of onlySource) gap(x.gap).source.push(x);
  for (const x of onlyDestination) gap(x.gap).destination.push(x);
  const renamed = new Map<string, ColumnFacts>(); // source name -> destination column
  for (const g of gaps.values()) {
    if (g.source.length !== 1 || g.destination.length !== 1) continue;
    const [s] = g.source;
    if (!s.beforeAnchor && appendedAfterDrop(s.column, s.gap, sides.source)) continue;
    renamed.set(s.column.name, g.destination[0].column);
  }
  const renamedFrom = new Set([...renamed.values()].map((c) => c.name));
  const lastAnchorAttnum = Math.max(0, ...src.filter((c) => common.has(c.name)).map((c) => c.attnum ?? 0));
  const placedSource = new Map(onlySource.map((x) => [x.column, x]));

  const out: ColumnChange[] = [];
  for (const s of src) {
    const d = dstByName.get(s.name);
    if (d) {
      out.push(...columnChanges(s, d, sides.constraints));
      continue;
    }
    const was = renamed.get(s.name);
    if (was) {
      out.push({ kind: 'renamed', source: s, destination: was }, ...columnChanges(s, was, sides.constraints));
      continue;
    }
    // Before an anchor: by attnum when known (an anchor added to both sides by hand may follow it), else by place.
    const existedAtCopy = s.attnum !== undefined ? s.attnum < lastAnchorAttnum : placedSource.get(s)!.beforeAnchor;
    out.push({ kind: existedAtCopy ? 'lost' : 'added', source: s });
  }
  for (const { column } of onlyDestination) {
    if (renamedFrom.has(column.name)) continue;
    out.push({ kind: sides.sourceDropped === 0 ? 'extra' : 'dropped', destination: column });
  }
  return out;
}

/** The columns of `list` not in `common`, each with the gap it sits in. */
function place(list: ColumnFacts[], common: Set<string>): Placed[] {
  let lastAnchor = -1;
  list.forEach((c, i) => {
    if (common.has(c.name)) lastAnchor = i;
  });
  const out: Placed[] = [];
  let gap = '';
  list.forEach((c, i) => {
    if (common.has(c.name)) gap = c.name;
    else out.push({ column: c, gap, beforeAnchor: i < lastAnchor });
  });
  return out;
}

/**
 * Whether a dropped attnum lies between the column before the gap and `column`: what DROP COLUMN then ADD
 * COLUMN leaves, and a rename does not. Unknown attnums: no.
 */
function appendedAfterDrop(column: ColumnFacts, gap: string, source: ColumnFacts[]): boolean {
  if (column.attnum === undefined) return false;
  const from = gap === '' ? 0 : source.find((c) => c.name === gap)?.attnum;
  if (from === undefined) return false;
  const liveBetween = source.filter((c) => c.attnum !== undefined && c.attnum > from && c.attnum < column.attnum!);
  return column.attnum - from - 1 > liveBetween.length;
}

/** Type, NOT NULL and default of one column both sides have. */
function columnChanges(s: ColumnFacts, d: ColumnFacts, constraints: boolean): ColumnChange[] {
  const out: ColumnChange[] = [];
  if (s.type !== '' && d.type !== '' && s.type !== d.type) out.push({ kind: 'type', source: s, destination: d });
  if (!constraints) return out;
  if (!!s.notNull !== !!d.notNull) out.push({ kind: 'not_null', source: s, destination: d });
  if (defaultDiffers(s, d)) out.push({ kind: 'default', source: s, destination: d });
  return out;
}

/**
 * mirrors creates destination columns without defaults (values always come from the source), so a destination
 * column without one is as expected; a destination default that is not the source's is drift. A generated
 * column is created with the source's expression and must keep it.
 */
export function defaultDiffers(s: ColumnFacts, d: ColumnFacts): boolean {
  if (s.generated || d.generated) return !!s.generated !== !!d.generated || (s.default ?? null) !== (d.default ?? null);
  return d.default != null && d.default !== s.default;
}
