/**
 * `grantkeeper preflight --providers`: comma-separated provider ids, each
 * optionally with the scopes its grant must hold after a `:`, joined by `+`:
 * `github:repo+read:org,slack`. Provider ids hold no `:`, so only the first
 * one splits (scopes such as `read:org` or Google's URLs keep theirs).
 */
import { invalidInput } from "../domain/errors.js";
import type { PreflightRequirement } from "../lifecycle/preflight.js";

/**
 * Parse the `--providers` value.
 * @throws {@link GrantkeeperError} `validation_failed` for an empty list, an empty provider id or an empty scope
 */
export function parsePreflightProviders(text: string): PreflightRequirement[] {
  const items = text.split(",").map((p) => p.trim()).filter(Boolean);
  if (items.length === 0) throw invalidInput([{ path: "--providers", message: "name at least one provider" }]);
  return items.map((item) => {
    const colon = item.indexOf(":");
    if (colon === -1) return item;
    const providerId = item.slice(0, colon).trim();
    const scopes = item.slice(colon + 1).split("+").map((s) => s.trim());
    if (providerId === "" || scopes.some((s) => s === "")) {
      throw invalidInput([{ path: "--providers", message: `${JSON.stringify(item)}: write provider:scope+scope (e.g. github:repo+read:org)` }]);
    }
    return { providerId, scopes };
  });
}
