/**
 * One run at a time of a "work off what is due" pass, shared by every caller
 * that asks meanwhile; a call during a run makes it do one more pass, so work
 * that arrived mid-run is never left waiting for the next timer. Used by the
 * refresh scheduler and the job worker.
 */
export class CoalescedRun {
  private running: Promise<number> | undefined;
  private again = false;

  /**
   * @param pass one pass over due work (an async function: it reports failure by rejecting); returns how many items it started
   * @param onSettled called after every run (success or not), e.g. to re-arm a timer
   * @param onError turns a pass that threw into a count (and logs it); a run never rejects
   */
  constructor(
    private readonly pass: () => Promise<number>,
    private readonly onSettled: () => void,
    private readonly onError: (e: Error) => number,
  ) {}

  /** Run now, or join the run in progress (which then does one more pass). @returns items started by the run */
  run(): Promise<number> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = this.loop().finally(() => this.onSettled());
    this.running = run;
    return run;
  }

  private async loop(): Promise<number> {
    let total = 0;
    try {
      do {
        this.again = false;
        total += await this.pass();
      } while (this.again);
    } catch (e) {
      total += this.onError(e as Error);
    } finally {
      // In the same turn as the last look at `again`: a call from here on starts a new run instead of joining
      // one that has no pass left (such a call used to be lost until the next timer).
      this.running = undefined;
    }
    return total;
  }

  /** True while a run is in progress. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Resolves when the run in progress, if any, has ended. */
  async settled(): Promise<void> {
    await this.running;
  }
}
