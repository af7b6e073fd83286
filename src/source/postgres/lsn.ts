/** WAL positions (LSNs): PostgreSQL's text form `XXXXXXXX/XXXXXXXX` ⇄ 64-bit bigint. */

const MAX_LSN = 0xffff_ffff_ffff_ffffn;

/** Parses `16/B374D848` (either case) into a bigint; throws a RangeError on anything else. */
export function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (match === null) throw new RangeError(`invalid LSN "${text}": expected two hex numbers like 16/B374D848`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** Formats an LSN as PostgreSQL prints it: upper-case hex halves without padding, `16/B374D848`. */
export function formatLsn(lsn: bigint): string {
  if (lsn < 0n || lsn > MAX_LSN) throw new RangeError(`LSN ${lsn} is outside 0..2^64-1`);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffff_ffffn).toString(16).toUpperCase()}`;
}
