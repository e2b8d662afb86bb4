import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadCatalogue } from "./catalogue.js";
import { CATALOGUE_DOC_MARKERS, renderCatalogue, withCatalogue } from "./catalogueDoc.js";

const PAGE = join(import.meta.dirname, "..", "..", "docs", "providers.md");

describe("docs/providers.md", () => {
  const templates = [...loadCatalogue().values()];

  it("shows the catalogue as the data file has it (run `npm run docs:providers` when this fails)", () => {
    const page = readFileSync(PAGE, "utf8");
    expect(withCatalogue(page, templates), "docs/providers.md is stale: run npm run docs:providers").toBe(page);
  });

  it("has one row per template, each with its source and token endpoint", () => {
    const section = renderCatalogue(templates);
    for (const t of templates) {
      expect(section).toContain(`| \`${t.id}\` | [`);
      expect(section).toContain(`(${t.docs})`);
      expect(section).toContain(t.tokenEndpoint);
    }
  });

  it("names per-connection settings and where they come from", () => {
    const section = renderCatalogue(templates);
    expect(section).toMatch(/\| `salesforce` .*`instance_url` \(token response\)/);
    expect(section).toMatch(/\| `zendesk` .*`subdomain`/);
  });

  it("refuses a page that lost its markers", () => {
    expect(() => withCatalogue("# Providers\n", templates)).toThrow(/markers/);
    expect(withCatalogue(`a\n${CATALOGUE_DOC_MARKERS.start}\nold\n${CATALOGUE_DOC_MARKERS.end}\nb`, templates)).toMatch(/^a\n<!-- catalogue:start[\s\S]*<!-- catalogue:end -->\nb$/);
  });
});
