/**
 * Text to Config, or every problem at once: YAML syntax, env interpolation, JSON Schema, semantic rules.
 * Pure apart from reading the bundled JSON Schema once; no config file I/O (load.ts finds and reads files).
 * Secrets: interpolated values are never echoed for url and password, and the Config keeps the password
 * non-enumerable, so neither problems nor JSON.stringify(config) can contain one.
 */
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { interpolate } from './interpolate.js';
import { normalize } from './normalize.js';
import { formatPath, walkStringScalars, YamlLocator, type Segment } from './positions.js';
import { ConfigInvalidError, sortProblems, type ConfigProblem, type Finding } from './problems.js';
import { ruleFindings } from './rules.js';
import { schemaFindings } from './schema.js';
import type { Config } from './types.js';

export type Env = Record<string, string | undefined>;

export interface ValidationResult {
  /** Present exactly when `problems` is empty. */
  config?: Config;
  problems: ConfigProblem[];
}

const SECRET_KEYS = new Set(['url', 'password']);

export function validateConfigText(text: string, file: string, env: Env): ValidationResult {
  const lineCounter = new LineCounter();
  // Silent: yaml would otherwise print warnings itself, and only the CLI prints. They are reported below.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, logLevel: 'silent', uniqueKeys: true });
  const locator = new YamlLocator(doc, lineCounter);
  const problem = (f: Finding): ConfigProblem => {
    const { line, col } = locator.locate(f.path, f.at);
    return { file, line, col, path: formatPath(f.path), message: f.message, ...(f.hint ? { hint: f.hint } : {}) };
  };

  // Anything reported after a syntax error is usually a consequence of it, so syntax errors come alone.
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e): ConfigProblem => {
      const { line, col } = locator.offsetPos(e.pos[0]);
      return { file, line, col, path: '', message: yamlMessage(e.message), hint: yamlHint(e.code) };
    });
    return { problems: sortProblems(problems) };
  }

  const findings: Finding[] = [];
  walkStringScalars(doc, (scalar, path) => {
    const r = interpolate(scalar.value, env);
    if (!r.changed) return;
    scalar.value = r.value;
    const secret = SECRET_KEYS.has(String(path[path.length - 1]));
    for (const issue of r.issues) {
      if (issue.kind === 'missing') {
        findings.push({ path, message: `environment variable \`${issue.name}\` is not set`, hint: `export ${issue.name}=...` });
      } else {
        const shown = issue.text !== undefined && !secret ? ` \`${issue.text}\`` : '';
        findings.push({
          path,
          message: issue.text === undefined ? 'unterminated `${`' : `unsupported placeholder${shown}: only \`\${env:NAME}\` is understood`,
          hint: 'write $${ for a literal ${',
        });
      }
    }
  });

  // Warnings such as an unknown `!tag` would otherwise silently turn a value into a plain string.
  const yamlWarnings = doc.warnings.map((w): ConfigProblem => {
    const { line, col } = locator.offsetPos(w.pos[0]);
    return { file, line, col, path: '', message: yamlMessage(w.message) };
  });

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // yaml refuses alias bombs here; nothing else is expected, but a problem beats a crash.
    return { problems: [...yamlWarnings, { file, line: 1, col: 1, path: '', message: yamlMessage((err as Error).message) }] };
  }
  // One problem per path, the first found: a further complaint about a value already reported is noise
  // (a missing env var makes the url empty; a number where an enum is expected fails both type and enum).
  const reported = new Set<string>();
  const accepted: Finding[] = [];
  const accept = (fs: Finding[]) => {
    for (const f of fs) {
      const key = formatPath(f.path);
      if (reported.has(key)) continue;
      reported.add(key);
      accepted.push(f);
    }
  };
  accept(findings);
  accept(schemaFindings(data));
  accept(ruleFindings({ data, reported }));

  if (accepted.length > 0 || yamlWarnings.length > 0) {
    return { problems: sortProblems(dedupe([...yamlWarnings, ...accepted.map(problem)])) };
  }

  const posOf = (path: Segment[], at?: 'key' | 'value') => ({ file, ...locator.locate(path, at), path: formatPath(path) });
  return { config: normalize(data as Record<string, unknown>, resolve(file), posOf), problems: [] };
}

/** The Config, or a CONFIG_INVALID MirrorsError listing every problem. */
export function parseConfigText(text: string, file: string, env: Env): Config {
  const { config, problems } = validateConfigText(text, file, env);
  if (!config) throw new ConfigInvalidError(file, problems);
  return config;
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.line}:${p.col}:${p.path}:${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// yaml's messages end with a position we report separately.
function yamlMessage(message: string): string {
  return 'YAML: ' + message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '').trim();
}

function yamlHint(code: string): string | undefined {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'each key may appear once in a map';
    case 'TAB_AS_INDENT':
      return 'indent with spaces, not tabs';
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation and the `:` after each key';
    default:
      return undefined;
  }
}
