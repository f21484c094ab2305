/**
 * What an update or replace changes, attribute by attribute, as Terraform shows it: `key: before -> after`
 * for short values, and a unified diff (the `diff` package) for text-valued ones (SQL, table definitions,
 * lists of tables). Pure: lines without color; the renderers paint them.
 */
import { structuredPatch } from 'diff';

export type ChangeLine =
  | { type: 'attribute'; key: string; before: string; after: string }
  | { type: 'diff_header'; key: string }
  | { type: 'diff'; sign: '+' | '-' | ' ' | '@'; text: string };

type Attrs = Record<string, unknown> | null | undefined;

export function attributeChanges(before: Attrs, after: Attrs): ChangeLine[] {
  const keys = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])];
  const out: ChangeLine[] = [];
  for (const key of keys) {
    const b = before?.[key];
    const a = after?.[key];
    if (isText(b) || isText(a)) {
      out.push({ type: 'diff_header', key });
      out.push(...unifiedDiff(asText(b), asText(a)));
    } else {
      out.push({ type: 'attribute', key, before: show(b), after: show(a) });
    }
  }
  return out;
}

/** Multi-line strings and lists of more than a few items read better as a diff. */
function isText(v: unknown): boolean {
  return (typeof v === 'string' && v.includes('\n')) || (Array.isArray(v) && v.length > 3);
}

function asText(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('\n') + '\n';
  return String(v).endsWith('\n') ? String(v) : `${String(v)}\n`;
}

export function unifiedDiff(before: string, after: string): ChangeLine[] {
  const patch = structuredPatch('before', 'after', before, after, '', '', { context: 3 });
  const out: ChangeLine[] = [];
  for (const h of patch.hunks) {
    out.push({ type: 'diff', sign: '@', text: `@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@` });
    for (const line of h.lines) {
      if (line.startsWith('\\')) continue; // "\ No newline at end of file"
      out.push({ type: 'diff', sign: line[0] as '+' | '-' | ' ', text: line.slice(1) });
    }
  }
  return out;
}

export function show(v: unknown): string {
  if (v === undefined || v === null) return '(none)';
  if (Array.isArray(v)) return `[${v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ')}]`;
  return typeof v === 'string' ? v : JSON.stringify(v);
}
