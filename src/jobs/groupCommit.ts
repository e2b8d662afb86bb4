/**
 * Group commit: requests that arrive while the event loop is busy are written
 * in one transaction (design.md "Ingress commits in groups under load …
 * without holding a lone request back"). A lone request is flushed on the
 * next turn of the event loop (setImmediate), never after a timer; each
 * caller's promise resolves only after the transaction holding its item
 * committed.
 */

/** Batches `submit()` calls into calls of `flush(items)`. */
export class GroupCommit<T, R> {
  private pending: Array<{ item: T; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  private scheduled = false;
  private flushing = false;
  /** Groups flushed so far and items in them (for benchmarks). */
  readonly stats = { groups: 0, items: 0 };

  /**
   * @param flush writes a group durably; returns one result per item, in order
   * @param maxGroup largest group per transaction @defaultValue 256
   */
  constructor(
    private readonly flush: (items: T[]) => Promise<R[]>,
    private readonly maxGroup = 256,
  ) {}

  /** Resolves with this item's result once its group committed; rejects if that transaction failed. */
  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => void this.drain());
  }

  private async drain(): Promise<void> {
    this.scheduled = false;
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const group = this.pending.splice(0, this.maxGroup);
        try {
          const results = await this.flush(group.map((g) => g.item));
          this.stats.groups++;
          this.stats.items += group.length;
          group.forEach((g, i) => g.resolve(results[i]!));
        } catch (e) {
          for (const g of group) g.reject(e);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
