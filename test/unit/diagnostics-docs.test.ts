import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DIAGNOSTICS } from '../../src/plan/diagnostics.js';

describe('docs/diagnostics.md', () => {
  const doc = readFileSync(new URL('../../docs/diagnostics.md', import.meta.url), 'utf8');
  it.each(Object.entries(DIAGNOSTICS))('documents %s with its anchor and severity', (code, d) => {
    expect(doc).toContain(`<a id="${code.toLowerCase()}"></a>`);
    expect(doc).toContain(`## ${code}: `);
    expect(doc).toContain(`(${d.severity})`);
  });
});
