/**
 * A JSON Schema's ajv validating function, compiled ahead of time: `npm run build` (src/scripts/compile-schema.ts)
 * writes it as CommonJS (ajv standalone) next to the module that uses it, and that module loads it instead of
 * compiling at start-up (about 100 ms with loading ajv, paid by every command). Running from src/ (tests) there
 * is no precompiled file, so it compiles.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv as AjvClass, Options, ValidateFunction } from 'ajv';

const require = createRequire(import.meta.url);

export interface SchemaValidator {
  /** Where the build writes the precompiled function. */
  readonly precompiledFile: URL;
  /** The precompiled function if the build wrote it, else compiled now; loaded once. */
  get(): ValidateFunction;
  /** Compiled now from the schema file. */
  compile(): ValidateFunction;
  /** The same function as CommonJS source, for the build. */
  source(): string;
}

export function schemaValidator(schemaFile: URL, precompiledFile: URL, options: Options): SchemaValidator {
  const schema = () => JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<string, unknown>;
  const ajv = (extra: Options = {}) => {
    const { Ajv } = require('ajv') as { Ajv: typeof AjvClass };
    return new Ajv({ ...options, ...extra });
  };
  let loaded: ValidateFunction | undefined;
  const compile = () => ajv().compile(schema());
  return {
    precompiledFile,
    compile,
    source() {
      const standalone = require('ajv/dist/standalone').default as (a: AjvClass, fn: ValidateFunction) => string;
      const a = ajv({ code: { source: true } });
      return standalone(a, a.compile(schema()));
    },
    get() {
      if (!loaded) {
        try {
          loaded = require(fileURLToPath(precompiledFile)) as ValidateFunction;
        } catch {
          loaded = compile();
        }
      }
      return loaded;
    },
  };
}
