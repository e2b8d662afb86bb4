/**
 * The one way a statement here picks its rows by a batch subquery — "update
 * (or delete) the rows whose key is among the first `n` that match" — so that
 * no such statement's speed depends on PostgreSQL's statistics being fresh.
 *
 * The incident (issue 16, the accept → delivered benchmark, 2026-12-05): one
 * PostgreSQL round took 62.6 s instead of ~4.5 s. The worker analyzes the
 * queue's tables when it starts, usually while `jobs` is empty; its claim
 * (`UPDATE jobs … WHERE seq IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`,
 * prepared) then got a plan built for an empty table: every row of `jobs`
 * in primary-key order, and for each one the whole LIMIT subquery run again
 * (rows locked again) to test membership. With 20,000 queued jobs one claim
 * ran past 10 s (one left running took 15 minutes); the worker stood still
 * until autovacuum's next ANALYZE (up to a minute) replaced the plan.
 * Retention's batch DELETE had met the same trap before (a sequential scan
 * and a hash join of the whole table per batch).
 *
 * `key = any(array(batch))` makes the batch an InitPlan: it runs once, first,
 * and its keys are looked up by the key's index (measured with generic plans
 * on 20,000 rows the statistics call empty: 3 ms, against 197 ms for a
 * materialized CTE joined back and over 10 s for `IN`). The planner may still
 * find those keys by reading the whole table when it believes the table is
 * tiny; the sessions that run these statements on PostgreSQL (the worker's,
 * database.ts) set `enable_seqscan=off` for that. SQLite evaluates a
 * non-correlated `IN (subquery)` once into a temporary index already, and has
 * no arrays.
 */
import { sql, type Expression, type SqlBool } from "kysely";
import type { Dialect } from "./database.js";

/**
 * `key IN (batch)` for a batch subquery (one with ORDER BY … LIMIT, possibly
 * `FOR UPDATE SKIP LOCKED`): on PostgreSQL `key = any(array(batch))`, run once
 * before the outer statement; on SQLite `key in (batch)`.
 * @param dialect the store's engine
 * @param key the outer statement's key column (an indexed, unique one: `seq`, `id`)
 * @param batch a subquery selecting exactly that key column
 */
export function keyInBatch(dialect: Dialect, key: string, batch: Expression<unknown>): Expression<SqlBool> {
  if (dialect === "postgres") return sql<SqlBool>`${sql.ref(key)} = any(array(${batch}))`;
  return sql<SqlBool>`${sql.ref(key)} in ${batch}`;
}
