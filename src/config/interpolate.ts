/**
 * `${env:NAME}` in string values. `$${` stands for a literal `${`. Pure: the environment is passed in.
 * It reports what went wrong as data and never builds messages, because only the caller knows whether
 * the string is a secret that must not be echoed.
 */

export type InterpolationIssue =
  | { kind: 'missing'; name: string }
  /** `${...}` that is not `${env:NAME}`; `text` is the placeholder only, or undefined when unterminated. */
  | { kind: 'malformed'; text?: string };

export interface InterpolationResult {
  value: string;
  /** True when at least one placeholder or escape was present, i.e. the value differs from the text. */
  changed: boolean;
  issues: InterpolationIssue[];
}

const ENV_REF = /^env:([A-Za-z_][A-Za-z0-9_]*)$/;

export function interpolate(text: string, env: Record<string, string | undefined>): InterpolationResult {
  if (!text.includes('${')) return { value: text, changed: false, issues: [] };
  let out = '';
  const issues: InterpolationIssue[] = [];
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
    } else if (text.startsWith('${', i)) {
      const close = text.indexOf('}', i + 2);
      if (close < 0) {
        issues.push({ kind: 'malformed' });
        out += text.slice(i);
        break;
      }
      const inner = text.slice(i + 2, close);
      const m = ENV_REF.exec(inner);
      if (!m) issues.push({ kind: 'malformed', text: text.slice(i, close + 1) });
      else {
        const value = env[m[1]];
        if (value === undefined) issues.push({ kind: 'missing', name: m[1] });
        else out += value;
      }
      i = close + 1;
    } else {
      out += text[i++];
    }
  }
  return { value: out, changed: true, issues };
}
