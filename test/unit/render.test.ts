import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import kleur from 'kleur';
import { buildPlan } from '../../src/diff/build.js';
import { renderPlanText } from '../../src/render/text.js';
import { renderPlanJson } from '../../src/render/json.js';
import { renderPlanMarkdown } from '../../src/render/markdown.js';
import { applied, config, livePeer, mirror, table } from '../support/fixtures.js';

const newMirrorPlan = () =>
  buildPlan(
    config([mirror('m', ['public.users'])]),
    {
      peers: {
        prod: livePeer('prod', [table('public.users')], {
          settings: { ...livePeer('x').settings, max_slot_wal_keep_size: -1 },
        }),
        staging: livePeer('staging'),
      },
    },
    { selected: null, createdBy: 'test' },
  );

describe('text rendering', () => {
  const was = kleur.enabled;
  beforeAll(() => (kleur.enabled = false));
  afterAll(() => (kleur.enabled = was));

  it('shows diagnostics first, then each action with its symbol and reason, then one summary line', () => {
    const text = renderPlanText(newMirrorPlan());
    expect(text.indexOf('warning MR105')).toBeLessThan(text.indexOf('+ peer.staging.catalog'));
    expect(text).toContain('  + mirror.m.slot\n');
    expect(text).toContain('fix: ALTER SYSTEM SET max_slot_wal_keep_size');
    expect(text.trimEnd().split('\n').at(-1)).toBe('Plan: 7 to create, 0 to update, 0 to replace, 0 to delete.');
    expect(text).not.toMatch(/\x1b\[/);
  });

  it('shows update and replace with before -> after and marks risky actions', () => {
    const m = mirror('m', ['public.users']);
    const src = livePeer('prod', [table('public.users')]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.users']);
    src.slots.mirrors_m.walStatus = 'lost';
    const text = renderPlanText(
      buildPlan(
        config([{ ...m, max_batch_size: 10 }]),
        { peers: { prod: src, staging: dst } },
        { selected: null, createdBy: 't' },
      ),
    );
    expect(text).toContain('  ~ mirror.m\n');
    expect(text).toContain('max_batch_size: 1000 -> 10');
    expect(text).toContain('-/+ mirror.m.slot [disruptive]');
    expect(text).toContain('Plan: 2 to create, 1 to update, 1 to replace, 0 to delete.');
  });

  it('says so when there is nothing to do', () => {
    const m = mirror('m', ['public.users']);
    const src = livePeer('prod', [table('public.users')]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.users']);
    expect(
      renderPlanText(
        buildPlan(config([m]), { peers: { prod: src, staging: dst } }, { selected: null, createdBy: 't' }),
      ),
    ).toBe('No changes. The mirrors match the configuration.\n');
  });

  it('colors symbols when color is on', () => {
    kleur.enabled = true;
    try {
      expect(renderPlanText(newMirrorPlan())).toMatch(/\x1b\[32m/);
    } finally {
      kleur.enabled = false;
    }
  });
});

describe('json and markdown rendering', () => {
  it('json is the plan itself, versioned, with no Dates or BigInts', () => {
    const plan = newMirrorPlan();
    const parsed = JSON.parse(renderPlanJson(plan));
    expect(parsed).toEqual(JSON.parse(JSON.stringify(plan)));
    expect(parsed.format_version).toBe(2);
    expect(Object.keys(parsed)).toEqual([
      'format_version',
      'tool',
      'created_by',
      'config_file',
      'config_hash',
      'project',
      'selected',
      'replace',
      'mirrors',
      'diagnostics',
      'actions',
      'summary',
    ]);
  });

  it('markdown has a diagnostics table and an ordered action table for a PR comment', () => {
    const md = renderPlanMarkdown(newMirrorPlan());
    expect(md).toContain('| ⚠️ warning | [MR105](docs/diagnostics.md#mr105) | `peer.prod` |');
    expect(md).toContain('| 1 | `+` create | `peer.staging.catalog` |');
    expect(md).toContain('**Plan: 7 to create, 0 to update, 0 to replace, 0 to delete.**');
  });
});
