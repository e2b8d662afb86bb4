/**
 * Records keyed by names from outside (HTTP header names, a token response's
 * fields). A plain object reads inherited members for names like
 * `constructor` or `toString`, and assignment to `__proto__` sets the
 * prototype instead of a field; an object without a prototype avoids both
 * but V8 keeps it in dictionary mode (measured ~1 µs more per proxied
 * request). These two keep a plain, fast object and treat every name alike.
 */

/** `record[name]` when it is the record's own field; undefined otherwise (never an inherited member). */
export function ownField<T>(record: Readonly<Record<string, T>>, name: string): T | undefined {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

/** Set `record[name]` as an own, enumerable field, `__proto__` included (which assignment would take as the prototype). */
export function setOwnField<T>(record: Record<string, T>, name: string, value: T): void {
  if (name === "__proto__") Object.defineProperty(record, name, { value, enumerable: true, writable: true, configurable: true });
  else record[name] = value;
}
