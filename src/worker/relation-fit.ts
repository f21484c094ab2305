/** Interim: replaced by src/diff/drift.ts relationDrift (same signature). */
export interface DriftColumn {
  name: string;
  type: string;
  notNull?: boolean;
  default?: string | null;
}
export interface RelationDrift {
  code: 'MR150' | 'MR151' | 'MR152' | 'MR153';
  message: string;
  hint: string;
  diff: string;
}

export function relationDrift(
  table: { source: string; destination: string },
  sent: DriftColumn[],
  destination: DriftColumn[],
  excluded: string[],
): RelationDrift | null {
  const dest = new Map(destination.map((c) => [c.name, c]));
  const sentNames = new Set(sent.map((c) => c.name));
  const added = sent.filter((c) => !dest.has(c.name));
  const dropped = destination.filter((c) => !sentNames.has(c.name) && !excluded.includes(c.name));
  const hint = 'apply the same change to the destination table, or remove and re-add the table to copy it again';
  const diff = '';
  if (added.length && dropped.length)
    return {
      code: 'MR152',
      message: `${table.source}: column ${dropped[0].name} is now ${added[0].name} on the source; ${table.destination} has no such column`,
      hint,
      diff,
    };
  if (added.length)
    return {
      code: 'MR150',
      message: `${table.source} has column ${added.map((c) => c.name).join(', ')} that ${table.destination} lacks`,
      hint,
      diff,
    };
  if (dropped.length)
    return {
      code: 'MR151',
      message: `${table.destination} has column ${dropped.map((c) => c.name).join(', ')} that ${table.source} no longer sends`,
      hint,
      diff,
    };
  for (const c of sent) {
    const d = dest.get(c.name)!;
    if (d.type !== c.type)
      return {
        code: 'MR153',
        message: `${table.source}.${c.name} is ${c.type} on the source and ${d.type} on ${table.destination}`,
        hint,
        diff,
      };
  }
  return null;
}
