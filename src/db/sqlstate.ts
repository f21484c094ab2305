/** SQLSTATE classification through named tables (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
export const SQLSTATE = {
  invalidPassword: '28P01',
  invalidAuthorization: '28000',
  invalidCatalogName: '3D000',
  insufficientPrivilege: '42501',
  duplicateObject: '42710',
  duplicateTable: '42P07',
  duplicateSchema: '42P06',
  undefinedTable: '42P01',
  undefinedObject: '42704',
  objectInUse: '55006',
  lockNotAvailable: '55P03',
  cannotConnectNow: '57P03',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  tooManyConnections: '53300',
} as const;

export const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

export function sqlstateOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}
