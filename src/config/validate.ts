/**
 * Text to Config, or every problem at once: YAML (yamldoc.ts), env interpolation, JSON Schema, semantic
 * rules. Pure apart from reading the bundled JSON Schema once; no config file I/O (load.ts finds and reads
 * files). Secrets: interpolated values are never echoed for url and password, and the Config keeps the
 * password non-enumerable, so neither problems nor JSON.stringify(config) can contain one.
 */
import { resolve } from 'node:path';
import { clip, quote } from './echo.js';
import { interpolate } from './interpolate.js';
import { normalize } from './normalize.js';
import { displayPath, pathKeys, walkStringScalars, type Segment } from './positions.js';
import { ConfigInvalidError, MAX_SHOWN_PROBLEMS, sortProblems, type ConfigProblem, type Finding } from './problems.js';
import { ruleFindings } from './rules.js';
import { schemaFindings } from './schema.js';
import type { Config } from './types.js';
import { parseYaml } from './yamldoc.js';

export type Env = Record<string, string | undefined>;

export interface ValidateOptions {
  /**
   * What an unset `${env:NAME}` is. 'error' (the default): the file cannot be used, as for every command
   * that connects. 'warn': `mirrors validate` linting a file without its secrets (a pull request from a
   * fork); the checks that need the value are skipped, and no Config is produced.
   */
  missingEnv?: 'error' | 'warn';
}

export interface ValidationResult {
  /** Present exactly when there is no error and every `${env:NAME}` was set. */
  config?: Config;
  /** The errors in file order, at most MAX_SHOWN_PROBLEMS of them: `errorCount` says how many there are. */
  problems: ConfigProblem[];
  /** Unset variables under missingEnv 'warn', in file order, at most MAX_SHOWN_PROBLEMS of them. */
  warnings: ConfigProblem[];
  errorCount: number;
  warningCount: number;
  /** What the file declares, when it has no error (also when a variable is unset and `config` is absent). */
  counts?: { peers: number; mirrors: number; tableMappings: number };
}

const SECRET_KEYS = new Set(['url', 'password']);

/** A problem placed in the file whose hint may still be pending (see Finding.hint). */
type Placed = Omit<ConfigProblem, 'hint'> & { hint?: Finding['hint'] };

export function validateConfigText(text: string, file: string, env: Env, opts: ValidateOptions = {}): ValidationResult {
  const missingEnv = opts.missingEnv ?? 'error';
  const { doc, locator, problems: fatal, warnings: yamlWarnings } = parseYaml(text, file);
  if (fatal.length > 0) return report(fatal, []);
  const place = (f: Finding): Placed => {
    const { line, col } = locator.locate(f.path, f.at);
    return { file, line, col, path: displayPath(f.path), message: f.message, hint: f.hint };
  };

  const malformed: Finding[] = [];
  const unset: Finding[] = [];
  walkStringScalars(doc, (scalar, path) => {
    const r = interpolate(scalar.value, env);
    if (!r.changed) return;
    scalar.value = r.value;
    const secret = SECRET_KEYS.has(String(path[path.length - 1]));
    for (const issue of r.issues) {
      if (issue.kind === 'missing') {
        const hint = missingEnv === 'warn' ? ' (plan, apply, run and status need it)' : '';
        unset.push({
          path,
          message: `environment variable ${quote(issue.name)} is not set${missingEnv === 'warn' ? ': the checks that need its value were skipped' : ''}`,
          hint: `export ${issue.name.length <= 60 ? issue.name : 'NAME'}=...${hint}`,
        });
      } else {
        const shown = issue.text !== undefined && !secret ? ` ${quote(issue.text)}` : '';
        malformed.push({
          path,
          message:
            issue.text === undefined
              ? 'unterminated `${`'
              : `unsupported placeholder${shown}: only \`\${env:NAME}\` is understood`,
          hint: 'write $${ for a literal ${',
        });
      }
    }
  });

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // yaml refuses alias bombs here; nothing else is expected, but a problem beats a crash.
    return report(
      [...yamlWarnings, { file, line: 1, col: 1, path: '', message: 'YAML: ' + clip((err as Error).message, 200) }],
      [],
    );
  }
  // One problem per path, the first found: a further complaint about a value already reported is noise
  // (a missing env var makes the url empty; a number where an enum is expected fails both type and enum).
  // `covered` holds every reported path and its ancestors, so "is anything under this path reported" is
  // one lookup (rules.ts asks it for every value it reads).
  const reported = new Set<string>();
  const covered = new Set<string>();
  const accept = (fs: Finding[]): Finding[] =>
    fs.filter((f) => {
      const keys = pathKeys(f.path);
      if (reported.has(keys[keys.length - 1])) return false;
      reported.add(keys[keys.length - 1]);
      for (const k of keys) covered.add(k);
      return true;
    });
  const tainted = (path: Segment[]) => covered.has(pathKeys(path)[path.length]);
  // Malformed placeholders first: they are errors in either mode and must not hide behind a warning.
  const errors = accept(malformed);
  const unsetAccepted = accept(unset);
  errors.push(...accept(schemaFindings(data)), ...accept(ruleFindings({ data, tainted })));
  if (missingEnv === 'error') errors.unshift(...unsetAccepted);
  const warnings = missingEnv === 'warn' ? unsetAccepted.map(place) : [];

  if (errors.length > 0 || yamlWarnings.length > 0) return report([...yamlWarnings, ...errors.map(place)], warnings);
  const result = report([], warnings);
  result.counts = countsOf(data as Record<string, unknown>);
  if (warnings.length === 0) {
    const posOf = (path: Segment[], at?: 'key' | 'value') => ({
      file,
      ...locator.locate(path, at),
      path: displayPath(path),
    });
    result.config = normalize(data as Record<string, unknown>, resolve(file), posOf);
  }
  return result;
}

/** The Config, or a CONFIG_INVALID MirrorsError listing the problems. An unset variable is always an error here. */
export function parseConfigText(text: string, file: string, env: Env): Config {
  const { config, problems, errorCount } = validateConfigText(text, file, env, { missingEnv: 'error' });
  if (!config) throw new ConfigInvalidError(file, problems, errorCount);
  return config;
}

/** Sorted, deduplicated and capped, with the hints of the listed problems worked out. */
function report(errors: Placed[], warnings: Placed[]): ValidationResult {
  const e = finish(errors);
  const w = finish(warnings);
  return { problems: e.listed, warnings: w.listed, errorCount: e.total, warningCount: w.total };
}

function finish(placed: Placed[]): { listed: ConfigProblem[]; total: number } {
  const seen = new Set<string>();
  const unique = sortProblems(placed).filter((p) => {
    const k = `${p.line}:${p.col}:${p.path}:${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const listed = unique.slice(0, MAX_SHOWN_PROBLEMS).map(({ hint, ...p }): ConfigProblem => {
    const h = typeof hint === 'function' ? hint() : hint;
    return h ? { ...p, hint: h } : p;
  });
  return { listed, total: unique.length };
}

function countsOf(data: Record<string, unknown>): NonNullable<ValidationResult['counts']> {
  // Defensive although there is no error: under missingEnv 'warn' an unset variable may stand for a whole map.
  const values = (v: unknown): unknown[] => (v !== null && typeof v === 'object' ? Object.values(v) : []);
  const mirrors = values(data.mirrors);
  const tableMappings = mirrors.reduce<number>(
    (n, m) => n + values((m as { tables?: unknown } | null)?.tables).length,
    0,
  );
  return { peers: values(data.peers).length, mirrors: mirrors.length, tableMappings };
}
