/** SQL for providers. The client secret is stored encrypted in its own column and never listed. */
import type { Kysely } from "kysely";
import type { ProviderDefinition } from "../providers/definition.js";
import type { Database } from "./schema.js";

/** A stored provider: definition, secret ciphertext, timestamps (milliseconds since the epoch). */
export interface StoredProvider {
  definition: ProviderDefinition;
  clientSecretCt: string | null;
  createdAtMs: number;
  updatedAtMs: number;
}

/** Reads and writes of `providers`. */
export class ProviderRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Insert or replace one provider. @returns true when it was created */
  async upsert(def: ProviderDefinition, clientSecretCt: string | null, nowMs: number): Promise<boolean> {
    const existing = await this.db.selectFrom("providers").select("id").where("id", "=", def.id).executeTakeFirst();
    if (existing) {
      await this.db.updateTable("providers").set({ definition: JSON.stringify(def), client_secret_ct: clientSecretCt, updated_at: nowMs }).where("id", "=", def.id).execute();
      return false;
    }
    await this.db.insertInto("providers").values({ id: def.id, definition: JSON.stringify(def), client_secret_ct: clientSecretCt, created_at: nowMs, updated_at: nowMs }).execute();
    return true;
  }

  /** One provider, or undefined. */
  async get(id: string): Promise<StoredProvider | undefined> {
    const row = await this.db.selectFrom("providers").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? { definition: JSON.parse(row.definition) as ProviderDefinition, clientSecretCt: row.client_secret_ct, createdAtMs: row.created_at, updatedAtMs: row.updated_at } : undefined;
  }

  /** Every provider, ordered by id, without secrets. */
  async list(): Promise<Array<Omit<StoredProvider, "clientSecretCt"> & { hasClientSecret: boolean }>> {
    const rows = await this.db.selectFrom("providers").selectAll().orderBy("id").execute();
    return rows.map((row) => ({
      definition: JSON.parse(row.definition) as ProviderDefinition,
      hasClientSecret: row.client_secret_ct !== null,
      createdAtMs: row.created_at,
      updatedAtMs: row.updated_at,
    }));
  }
}
