/**
 * Where rendered markdown points for documentation: absolute links, since a relative `docs/...` link breaks in a
 * pull-request comment or an issue. The base defaults to this version's docs in the project's repository (the
 * package's `homepage`), and can be set (--docs-url, MIRRORS_DOCS_URL) to a mirror of them.
 */
import { HOMEPAGE, VERSION } from '../cli/version.js';

export const DEFAULT_DOCS_URL = `${HOMEPAGE}/blob/v${VERSION}/docs/`;

/** The base from the command line, else the environment, else the default; always ending in `/`. */
export function docsBase(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const base = flag ?? env.MIRRORS_DOCS_URL ?? DEFAULT_DOCS_URL;
  return base.endsWith('/') ? base : `${base}/`;
}

/** `diagnostics.md#mr101` under the base. */
export const docsLink = (base: string, page: string) => `${base}${page}`;
