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
  return sql<SqlBool>`${sql.ref(column)} in (${sql.raw(literals(values))})`;
}

/**
 * `'a', 'b', …`: the code's own constants as SQL string literals, for {@link inList} and for the statements
 * written out as text (jobStatements.ts). Never for input.
 */
export function literals(values: readonly string[]): string {
  return values.map((v) => `'${v}'`).join(", ");
}

/**
 * `column <> 'succeeded'`: literally the predicate of SQLite's
 * `jobs_integration_state` partial index (migration 0020), which holds every
 * job of an integration but the succeeded ones — so a job's success takes its
 * entry out of a small index instead of moving it within a large one (issue
 * 16: a group's outcome wrote ~15 pages of the old full index). SQLite uses a
 * partial index only when the query's WHERE repeats the index's predicate
 * term (https://sqlite.org/partialindex.html, "Queries Using Partial
 * Indexes"): each per-integration lookup by a state other than `succeeded`
 * adds this term. PostgreSQL keeps one `(integration_id, state, seq)` index
 * for every job (see the migration); the extra term changes nothing there.
 * @param column the state column, optionally qualified (`w.state`) @defaultValue "state"
 */
export function notSucceeded(column = "state"): RawBuilder<SqlBool> {
  return sql<SqlBool>`${sql.ref(column)} ${sql.raw(NOT_SUCCEEDED)}`;
}

/** {@link notSucceeded} as text, for the statements written out as text (jobStatements.ts). @param column e.g. `w.state` */
export function notSucceededText(column: string): string {
  return `${column} ${NOT_SUCCEEDED}`;
}

const NOT_SUCCEEDED = "<> 'succeeded'";
