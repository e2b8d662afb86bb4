/** SQL for alerts and alert episodes. */
import type { Kysely, Selectable } from "kysely";
import type { Episode } from "../domain/alertEpisodes.js";
import type { AlertsTable, Database } from "./schema.js";

/** An `alerts` row. */
export type AlertRow = Selectable<AlertsTable>;

/** Reads and writes of alerts. */
export class AlertRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** A subject's episode, or undefined. */
  async episode(subject: string): Promise<Episode | undefined> {
    const r = await this.db.selectFrom("alert_episodes").select("episode").where("subject", "=", subject).executeTakeFirst();
    return r ? (JSON.parse(r.episode) as Episode) : undefined;
  }

  /** Store (or, with undefined, forget) a subject's episode. */
  async saveEpisode(subject: string, episode: Episode | undefined, nowMs: number): Promise<void> {
    if (!episode) {
      await this.db.deleteFrom("alert_episodes").where("subject", "=", subject).execute();
      return;
    }
    const json = JSON.stringify(episode);
    await this.db.insertInto("alert_episodes").values({ subject, episode: json, updated_at: nowMs }).onConflict((oc) => oc.column("subject").doUpdateSet({ episode: json, updated_at: nowMs })).execute();
  }

  /** Record an alert. @returns its id */
  async insert(row: Omit<AlertRow, "id">): Promise<number> {
    const r = await this.db.insertInto("alerts").values(row).returning("id").executeTakeFirstOrThrow();
    return Number(r.id);
  }

  /** Alerts at or after `sinceMs`, oldest first, at most `limit`. */
  async since(sinceMs: number, limit: number): Promise<AlertRow[]> {
    return this.db.selectFrom("alerts").selectAll().where("at", ">=", sinceMs).orderBy("at").orderBy("id").limit(limit).execute();
  }
}
