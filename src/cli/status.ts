/**
 * `mirrors status`: what every selected mirror is doing right now, read from its peers (never written).
 * Exit 0 when every selected mirror is Following, 2 otherwise (so cron can alert), 1 on errors.
 */
import { loadConfig } from '../config/load.js';
import { MirrorsError } from '../errors.js';
import { renderStatusJson, renderStatusText } from '../render/status.js';
import { collectStatus } from '../status/collect.js';
import { statusExitCode, statusReport } from '../status/model.js';
import type { Io } from './io.js';
import { VERSION } from './version.js';

export type StatusFormat = 'text' | 'json';

export interface StatusOptions {
  config?: string;
  mirror?: string[];
  format?: StatusFormat;
}

export async function statusCommand(opts: StatusOptions, io: Io): Promise<number> {
  const config = await loadConfig({ configPath: opts.config, cwd: process.cwd(), env: process.env });
  const declared = Object.keys(config.mirrors);
  const selected = opts.mirror?.length ? [...new Set(opts.mirror)] : declared;
  const unknown = selected.filter((n) => !config.mirrors[n]);
  if (unknown.length) {
    throw new MirrorsError('USAGE', `unknown mirror${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, {
      hint: `declared mirrors: ${declared.join(', ') || '(none)'}`,
    });
  }
  const facts = await collectStatus(config, selected);
  const report = statusReport({
    configFile: config.file,
    createdBy: `mirrors ${VERSION}`,
    generatedAt: new Date().toISOString(),
    facts,
  });
  io.out((opts.format ?? 'text') === 'json' ? renderStatusJson(report) : renderStatusText(report));
  return statusExitCode(report);
}
