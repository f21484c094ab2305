/**
 * Checks the interpolated data against schemas/mirrors.schema.json with ajv and turns ajv's errors into
 * findings a person can act on. Never echoes a url or password value.
 * The peer url-XOR-fields rule is in the schema for editors, but its ajv errors (if/then/else/not) are
 * dropped here because rules.ts explains it better; likewise uniqueItems, whose ajv error names one pair.
 */
import type { ErrorObject, Options } from 'ajv';
import { schemaValidator } from '../util/schema-validator.js';
import type { Finding } from './problems.js';
import { didYouMean } from './suggest.js';
import { DURATION_HINT } from './duration.js';
import { clip, quote } from './echo.js';
import { SETTING_YAML_KEYS } from './settings.js';

type Segment = string | number;

// strictRequired is off because the if/then/else subschemas name properties declared by their parent.
// allowUnionTypes: `promote` is true or an object (a oneOf would be dropped with the peer rule's errors above).
const AJV_OPTIONS: Options = {
  allErrors: true,
  verbose: true,
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
  logger: false,
};

/** The config schema; the same relative paths from src/config and dist/config (schemas/ ships with the package). */
export const CONFIG_SCHEMA = schemaValidator(
  new URL('../../schemas/mirrors.schema.json', import.meta.url),
  new URL('./schema-validator.cjs', import.meta.url),
  AJV_OPTIONS,
);

const DROPPED_KEYWORDS = new Set(['if', 'then', 'else', 'not', 'anyOf', 'oneOf', 'uniqueItems']);
const DROPPED_SCHEMA_PATH = /\/(if|then|else|not|anyOf|oneOf|propertyNames)\//;
const SECRET_KEYS = new Set(['url', 'password']);

export function schemaFindings(data: unknown): Finding[] {
  const validate = CONFIG_SCHEMA.get();
  if (validate(data)) return [];
  const findings: Finding[] = [];
  for (const e of validate.errors ?? []) {
    if (DROPPED_KEYWORDS.has(e.keyword) || DROPPED_SCHEMA_PATH.test(e.schemaPath)) continue;
    const f = toFinding(e, pointerToPath(e.instancePath, data));
    if (f) findings.push(f);
  }
  return findings;
}

function pointerToPath(pointer: string, data: unknown): Segment[] {
  if (pointer === '') return [];
  const path: Segment[] = [];
  let cur: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const s: Segment = Array.isArray(cur) ? Number(seg) : seg;
    path.push(s);
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[String(s)] : undefined;
  }
  return path;
}

function toFinding(e: ErrorObject, path: Segment[]): Finding | undefined {
  const last = path[path.length - 1];
  const field = typeof last === 'string' ? last : undefined;
  const secret = field !== undefined && SECRET_KEYS.has(field);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      const key = String(p.missingProperty);
      return { path: [...path, key], at: 'value', message: `missing required key \`${key}\``, hint: requiredHint(key) };
    }
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const allowed = Object.keys((e.parentSchema?.properties as object | undefined) ?? {});
      return {
        path: [...path, key],
        at: 'key',
        message: `unknown key ${quote(key)}`,
        hint: () => {
          const guess = didYouMean(key, allowed);
          return guess
            ? `did you mean \`${guess}\`?`
            : (belongsElsewhere(key) ?? `allowed keys here: ${allowed.join(', ')}`);
        },
      };
    }
    case 'propertyNames': {
      const name = String(p.propertyName);
      const isMirror = path.length === 1 && path[0] === 'mirrors';
      return {
        path: [...path, name],
        at: 'key',
        message: `invalid ${isMirror ? 'mirror' : 'peer'} name ${quote(name)}`,
        hint: isMirror
          ? 'use lower-case letters, digits and _, starting with a letter, at most 50 characters (the source publication and slot are named mirrors_NAME)'
          : 'use lower-case letters, digits, _ and -, starting with a letter, at most 63 characters',
      };
    }
    case 'type':
      return typeFinding(path, String(p.type), e.data);
    case 'const':
      if (path.length === 1 && path[0] === 'version') {
        return {
          path,
          message: `unsupported version${show(e.data, secret)}: this mirrors reads version 1`,
          hint: 'write `version: 1`',
        };
      }
      break;
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map(String);
      const guess = typeof e.data === 'string' && !secret ? didYouMean(e.data, allowed) : undefined;
      return {
        path,
        message: `must be one of ${allowed.join(', ')}${show(e.data, secret, ', found')}`,
        hint: guess ? `did you mean \`${guess}\`?` : undefined,
      };
    }
    case 'minimum':
    case 'maximum': {
      const word = e.keyword === 'minimum' ? 'least' : 'most';
      return { path, message: `must be at ${word} ${String(p.limit)}${show(e.data, secret, ', found')}` };
    }
    case 'minLength':
      return {
        path,
        message: Number(p.limit) === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters`,
      };
    case 'maxLength':
      return {
        path,
        message: `must be at most ${String(p.limit)} characters`,
        ...(path.length === 1 && field === 'project' ? { hint: PROJECT_HINT } : {}),
      };
    case 'minItems':
      if (field === 'tables') {
        return { path, message: 'a mirror needs at least one table', hint: 'add `- source_table: schema.table`' };
      }
      return { path, message: `needs at least ${String(p.limit)} entries` };
    case 'pattern':
      if (field === 'lag_threshold' || field === 'max_fence_wait' || field === 'degrade_after')
        return { path, message: `${show(e.data, secret, '', true)} is not a duration`, hint: DURATION_HINT };
      if (path.length === 1 && field === 'project') {
        return { path, message: `invalid project name${show(e.data, secret)}`, hint: PROJECT_HINT };
      }
      break;
  }
  return { path, message: e.message ?? `is invalid (${e.keyword})` };
}

const PROJECT_HINT = 'use lower-case letters, digits, _ and -, starting with a letter, at most 63 characters';

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  object: 'a map (key: value)',
  array: 'a list (- item)',
  null: 'nothing',
};

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'number') return Number.isInteger(v) ? 'a whole number' : 'a number with a fraction';
  if (typeof v === 'boolean') return 'true/false';
  if (typeof v === 'string') return 'a string';
  if (v instanceof Uint8Array) return 'binary data';
  return 'a map';
}

function typeFinding(path: Segment[], expected: string, data: unknown): Finding {
  const want = expected
    .split(',')
    .map((t) => TYPE_WORDS[t] ?? t)
    .join(' or ');
  if (path.length === 0) {
    if (data === null || data === undefined)
      return { path, message: 'the file is empty', hint: 'start from examples/mirrors.yaml' };
    return { path, message: `the file must be a map of version, peers, defaults and mirrors, found ${describe(data)}` };
  }
  const field = path[path.length - 1];
  const parent = path[path.length - 2];
  let hint: string | undefined;
  if (parent === 'tables' && typeof data === 'string') {
    hint = `write \`- source_table: ${data.length <= 80 && !/[\n\r]/.test(data) ? data : 'schema.table'}\``;
  } else if (field === 'lag_threshold' || field === 'degrade_after') {
    hint = DURATION_HINT;
  } else if (expected === 'string' && (typeof data === 'number' || typeof data === 'boolean')) {
    hint = 'quote the value to make it a string';
  } else if (expected === 'boolean' && typeof data === 'string') {
    hint = 'write true or false (YAML 1.2: yes/no/on/off are strings)';
  }
  return { path, message: `expected ${want}, found ${describe(data)}`, hint };
}

/** ` \`value\`` for plain short values; nothing for secrets or anything long enough to be pasted data. */
function show(v: unknown, secret: boolean, prefix = '', bare = false): string {
  if (secret) return bare ? 'the value' : '';
  let text: string | undefined;
  if (typeof v === 'number' || typeof v === 'boolean') text = String(v);
  else if (typeof v === 'string' && v.length <= 40 && !/[\n\r]/.test(v)) text = clip(v);
  if (text === undefined) return bare ? 'the value' : '';
  return bare ? `\`${text}\`` : `${prefix} \`${text}\``;
}

function requiredHint(key: string): string | undefined {
  switch (key) {
    case 'version':
      return 'add `version: 1` at the top';
    case 'peers':
      return 'declare the databases under `peers:`';
    case 'mirrors':
      return 'declare the mirrors under `mirrors:` (an empty map `mirrors: {}` is allowed)';
    case 'tables':
      return 'add `tables:` with at least one `- source_table: schema.table`';
    default:
      return undefined;
  }
}

const ELSEWHERE: [readonly string[], string][] = [
  [['source', 'destination', 'tables'], 'is set in each mirror'],
  [
    ['source_table', 'destination_table', 'partition_key', 'exclude_columns'],
    "belongs in an entry of a mirror's `tables`",
  ],
  [['host', 'port', 'database', 'user', 'password', 'sslmode', 'url'], 'belongs in a peer under `peers`'],
  [SETTING_YAML_KEYS, 'is a mirror setting: set it in a mirror or under `defaults`'],
  [['version', 'project', 'peers', 'defaults', 'mirrors'], 'belongs at the top level of the file'],
];

/** A key that is valid somewhere else is usually at the wrong indentation; say where it goes. */
function belongsElsewhere(key: string): string | undefined {
  const hit = ELSEWHERE.find(([keys]) => keys.includes(key));
  return hit ? `\`${key}\` ${hit[1]}` : undefined;
}
