/**
 * Build step (`npm run build`, after tsc): writes the validating functions of the config schema and of the
 * plan file schema, compiled by ajv ahead of time, next to their modules in dist/ (util/schema-validator.ts).
 */
import { writeFileSync } from 'node:fs';
import { CONFIG_SCHEMA } from '../config/schema.js';
import { PLAN_SCHEMA } from '../plan/schema.js';

for (const schema of [CONFIG_SCHEMA, PLAN_SCHEMA]) writeFileSync(schema.precompiledFile, schema.source());
