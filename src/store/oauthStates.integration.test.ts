/**
 * The cap on a connect session's pending states (`insertCapped`): the oldest
 * by arrival go first, also when several states were opened in the same
 * millisecond — before, such ties fell to the (random) state hash, and a link
 * opened 250 times kept its very first state in ~2 % of the e2e runs.
 */
import { afterEach, describe, expect, it } from "vitest";
import { migratedStore, type TestDatabase } from "../../test/support/backend.js";
import type { Store } from "./database.js";
import { OAuthStateRepository } from "./oauthStates.js";

const T = 1_700_000_000_000;

describe("pending states of one connect session", () => {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  it("keeps the newest by arrival when every state was opened in the same millisecond", async () => {
    ({ tdb, store } = await migratedStore());
    await store.db
      .insertInto("connect_sessions")
      .values({ id: "cs_tie", token_hash: "t", provider_id: "p", entity_id: "e", scopes: null, return_to: null, connection_config: null, created_at: T, expires_at: T + 60_000, completed_at: null, connection_id: null })
      .execute();
    const states = new OAuthStateRepository(store.db, store.dialect);
    // Hashes ascending with arrival: a tie broken by hash would keep the earliest states and evict the later ones.
    const arrivals = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"].map((d) => d.repeat(64));
    for (const hash of arrivals) {
      await states.insertCapped({ state_hash: hash, provider_id: "p", entity_id: "e", code_verifier_ct: "v", return_to: null, created_at: T, expires_at: T + 60_000, used_at: null, session_id: "cs_tie", binding_hash: "b" }, 5, T);
    }
    const kept = await store.db.selectFrom("oauth_states").select("state_hash").where("session_id", "=", "cs_tie").execute();
    expect(kept.map((r) => r.state_hash).sort()).toEqual(arrivals.slice(-5).sort());
  });
});
