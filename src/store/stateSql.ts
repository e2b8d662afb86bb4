/**
 * SQL for the persisted state lists: `column in ('a', 'b', …)` built from the
 * exported constants the code's unions come from (`JOB_STATES`,
 * `CLAIMABLE_JOB_STATES`, `BREAKER_STATES`, …), for CHECK constraints,
 * partial indexes and the queries that must match them. Literals, not bound
 * parameters: a planner can only use a partial index whose predicate it can
 * prove from the query's own text.
 */
import { sql, type RawBuilder, type SqlBool } from "kysely";

/**
 * `column in (<values as SQL literals>)`. Only for the code's own constant
 * lists — never for input.
 * @param column a column name, optionally qualified (`j.state`)
 */
export function inList(column: string, values: readonly string[]): RawBuilder<SqlBool> {
  return sql<SqlBool>`${sql.ref(column)} in (${sql.join(values.map((v) => sql.lit(v)))})`;
}
