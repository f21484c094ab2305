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
    const md = renderPlanMarkdown(newMirrorPlan(), { docsUrl: 'https://docs.example/v1/' });
    expect(md).toContain('| ⚠️ warning | [MR105](https://docs.example/v1/diagnostics.md#mr105) | `peer.prod` |');
    expect(md).toContain('| 1 | `+` create | `peer.staging.catalog` |');
    expect(md).toContain('**Plan: 7 to create, 0 to update, 0 to replace, 0 to delete.**');
  });

  it('markdown for a comment updated in place: the marker first, the summary and risk badges before any detail', () => {
    const md = renderPlanMarkdown(newMirrorPlan());
    const lines = md.split('\n');
    expect(lines[0]).toBe('<!-- mirrors:plan project=default file=mirrors.yaml -->');
    expect(md.indexOf('**Plan: 7 to create')).toBeLessThan(md.indexOf('| # |'));
    expect(md).toContain('🟢 safe 7');
    // Every link is absolute: a relative docs/... link breaks inside a pull request.
    expect(md).not.toMatch(/\]\((?!https?:)/);
  });

  it('markdown collapses every statement the plan runs, one section per mirror and peer', () => {
    const md = renderPlanMarkdown(newMirrorPlan());
    expect(md).toContain('<details><summary>`mirror.m` runs');
    expect(md).toContain('<details><summary>`peer.staging` runs 1 action: SQL</summary>');
    expect(md).toMatch(/-- create mirror\.m\.publication\nCREATE PUBLICATION/);
  });

  it('markdown past the comment limit keeps the summary and tables, leaves out sections from the end and says where the plan is', () => {
    const plan = newMirrorPlan();
    const whole = renderPlanMarkdown(plan);
    const md = renderPlanMarkdown(plan, { limit: whole.length - 10, fullPlan: 'the plan.json artifact' });
    expect(md.length).toBeLessThanOrEqual(whole.length - 10);
    expect(md).toContain('**Plan: 7 to create');
    expect(md).toContain('| 1 | `+` create | `peer.staging.catalog` |');
    expect(md).toMatch(
      /Shortened to fit a comment: \d+ of \d+ collapsed sections? left out\. The whole plan: the plan.json artifact\./,
    );
    expect(md.match(/<details>/g)!.length).toBeLessThan(whole.match(/<details>/g)!.length);
    const tiny = renderPlanMarkdown(plan, { limit: 600 });
    expect(tiny.length).toBeLessThanOrEqual(600);
    expect(tiny).toContain('Shortened to fit a comment');
  });

  it('markdown names the mirrors.yaml line of a diagnostic', () => {
    const m = mirror('m', ['public.gone']);
    const p = buildPlan(
      config([m]),
      { peers: { prod: livePeer('prod'), staging: livePeer('staging') } },
      { selected: null, createdBy: 'test' },
    );
    const d = p.diagnostics.find((x) => x.code === 'MR110')!;
    expect(d.position).toEqual({ line: m.tables[0].pos.line, col: m.tables[0].pos.col });
    expect(renderPlanMarkdown(p)).toContain(
      `| \`mirror.m.table.public.gone\` | mirrors.yaml:${m.tables[0].pos.line} |`,
    );
  });
});
