/**
 * Page cursors over auto-increment ids and sequence numbers (`?cursor=` of
 * the event, history and job lists).
 */

/**
 * The position a numeric page cursor names, or `undefined` when the cursor is
 * absent or is not one (not all digits, or beyond 2^53 − 1): such a cursor
 * starts from the first page, as a cursor of letters always has. Found by the
 * fuzz test: `?cursor=9999…` (40 digits) became `1e+40`, which PostgreSQL
 * refused as a bigint and the list answered 500.
 * @param cursor the `cursor` query parameter
 */
export function seqCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined || !/^\d{1,16}$/.test(cursor)) return undefined;
  const n = Number(cursor);
  return Number.isSafeInteger(n) ? n : undefined;
}
