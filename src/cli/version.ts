import { readFileSync } from 'node:fs';

const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

export const VERSION: string = PACKAGE.version;
/** The project's page (its repository): documentation links in rendered markdown start there. */
export const HOMEPAGE: string = PACKAGE.homepage;
