/**
 * LSN math with BigInt. Postgres prints `16/B374D848`; pg-logical-replication sometimes gives other
 * spellings, so everything is compared as a 64-bit BigInt, never as a string or JS number.
 */
export function lsnToBigInt(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!m) throw new Error(`not an LSN: ${lsn}`);
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

export function bigIntToLsn(v: bigint): string {
  if (v < 0n) throw new Error('negative LSN');
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
}
