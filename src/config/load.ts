/**
 * Finds mirrors.yaml (cosmiconfig, in the working directory only, or `-c FILE`), reads it and hands the
 * text to validate.ts. The only file I/O of the config module.
 * Two entry points: loadConfig for the commands that connect (they need a Config, so an unset variable is
 * an error), and validateConfigFile for `mirrors validate`, which reports instead of throwing and can lint
 * a file without its secrets.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { cosmiconfig } from 'cosmiconfig';
import { MirrorsError } from '../errors.js';
import type { Config } from './types.js';
import { parseConfigText, validateConfigText, type ValidateOptions, type ValidationResult } from './validate.js';

export {
  parseConfigText,
  validateConfigText,
  type Env,
  type ValidateOptions,
  type ValidationResult,
} from './validate.js';
export { ConfigInvalidError, formatProblem, type ConfigProblem } from './problems.js';

export interface LoadOptions {
  /** `-c FILE`: wins over discovery; relative to cwd. */
  configPath?: string;
  cwd: string;
  env: Record<string, string | undefined>;
}

export const SEARCH_PLACES = ['mirrors.yaml', 'mirrors.yml', '.config/mirrors.yaml', '.config/mirrors.yml'];

const NOT_FOUND_HINT = 'create mirrors.yaml (see examples/) or pass -c FILE';

/** The Config, or CONFIG_NOT_FOUND / CONFIG_INVALID. Every `${env:NAME}` must be set. */
export async function loadConfig(opts: LoadOptions): Promise<Config> {
  const { file, text } = await readConfigFile(opts);
  return parseConfigText(text, file, opts.env);
}

/** Every problem of the file, as data; throws only CONFIG_NOT_FOUND. `file` is the absolute path read. */
export async function validateConfigFile(
  opts: LoadOptions & ValidateOptions,
): Promise<ValidationResult & { file: string }> {
  const { file, text } = await readConfigFile(opts);
  return { ...validateConfigText(text, file, opts.env, { missingEnv: opts.missingEnv }), file };
}

async function readConfigFile(opts: LoadOptions): Promise<{ file: string; text: string }> {
  const file = opts.configPath !== undefined ? resolve(opts.cwd, opts.configPath) : await discover(opts.cwd);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
      throw new MirrorsError('CONFIG_NOT_FOUND', `config file ${file} not found`, { hint: NOT_FOUND_HINT, cause: err });
    }
    throw new MirrorsError('CONFIG_NOT_FOUND', `cannot read config file ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { file, text };
}

async function discover(cwd: string): Promise<string> {
  // cosmiconfig only finds the file: its loaders would lose the YAML positions every problem needs.
  const rawText = (_path: string, content: string) => ({ content });
  const explorer = cosmiconfig('mirrors', {
    searchPlaces: SEARCH_PLACES,
    searchStrategy: 'none',
    ignoreEmptySearchPlaces: false,
    cache: false,
    loaders: { '.yaml': rawText, '.yml': rawText },
  });
  const found = await explorer.search(cwd);
  if (!found) {
    throw new MirrorsError('CONFIG_NOT_FOUND', `no mirrors.yaml in ${cwd}`, {
      hint: NOT_FOUND_HINT,
      details: SEARCH_PLACES.map((p) => `looked for ${p}`),
    });
  }
  return found.filepath;
}
