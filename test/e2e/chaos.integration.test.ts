/**
 * The chaos suite, short (issue 12 item 6): the same cases as `npm run chaos`
 * (bench/chaos.ts; what each does is in docs/reliability.md) with a few
 * seconds of chaos and a few dozen grants, so CI runs it on every change.
 * PostgreSQL project only: the suite brings its own cluster.
 */
import { describe, expect, it } from "vitest";
import { runChaos } from "../../bench/chaos.js";
import { privatePostgresAvailable } from "../support/privatePostgres.js";

const onPostgres = process.env.GK_TEST_BACKEND === "postgres";

describe.runIf(onPostgres && (await privatePostgresAvailable()))("chaos suite (short)", () => {
  it("four serve processes ride out token-endpoint chaos, a PostgreSQL restart, a kill -9 and a rotation race without losing a grant or a webhook", async () => {
    const lines: string[] = [];
    const f = await runChaos({ chaosMs: 6_000, pgDownMs: 2_000, connections: 24, integrations: 6, accessTokenTtlSeconds: 4, webhooksPerSecond: 30, killedRefreshes: 4, racedConnections: 8, refreshTimeoutSeconds: 15, log: (l) => lines.push(l) }).catch((e) => {
      throw new Error(`chaos run failed: ${(e as Error).message}\n${lines.join("\n")}`, { cause: e });
    });
    const context = `${JSON.stringify(f, null, 1)}\n${lines.join("\n")}`;
    // The figures docs/reliability.md quotes for the short variant.
    process.stdout.write(`[chaos short] ${JSON.stringify(f)}\n`);
    // 1. token-endpoint chaos
    expect(f.tokenChaos.inError, context).toBe(0);
    expect(f.tokenChaos.lostAfterwards, context).toBe(0);
    expect(f.tokenChaos.integrationsNotEnabled, context).toBe(0);
    expect(f.tokenChaos.tokenCalls, context).toBeGreaterThan(0);
    expect(f.tokenChaos.tokenCalls, context).toBeLessThanOrEqual(f.tokenChaos.dueRefreshes * (f.tokenChaos.maxRetries + 1));
    // 2. PostgreSQL restart
    expect(f.pgRestart.processesAlive, context).toBe(4);
    expect(f.pgRestart.readyAgainMs, context).toBeLessThan(10_000);
    expect(f.webhooks.answered503, context).toBeGreaterThan(0);
    expect(f.webhooks.acceptedWhileDown, context).toBe(0);
    expect(f.webhooks.delivered, context).toBe(f.webhooks.accepted);
    expect(Object.keys(f.webhooks.otherStatuses), context).toEqual([]);
    // 3. kill -9 mid-refresh
    expect(f.kill9.lost, context).toBe(0);
    // 4. rotation race
    expect(f.rotationRace.invalidGrant, context).toBe(0);
    expect(f.rotationRace.inError, context).toBe(0);
  }, 300_000);
});
