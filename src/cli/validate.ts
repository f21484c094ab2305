/** `mirrors validate`: the configuration alone, no network. */
import { loadConfig } from '../config/load.js';
import type { Io } from './io.js';

export async function validateCommand(opts: { config?: string }, io: Io): Promise<number> {
  const config = await loadConfig({ configPath: opts.config, cwd: process.cwd(), env: process.env });
  const mirrors = Object.values(config.mirrors);
  const mappings = mirrors.reduce((n, m) => n + m.tables.length, 0);
  io.out(
    `${config.file} is valid: ${Object.keys(config.peers).length} peer(s), ${mirrors.length} mirror(s), ${mappings} table mapping(s).\n`,
  );
  return 0;
}
