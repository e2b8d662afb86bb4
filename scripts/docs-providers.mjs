#!/usr/bin/env node
// Regenerates the catalogue section of docs/providers.md from catalogue/providers.json.
// Run through `npm run docs:providers` (it builds first); src/providers/catalogueDoc.test.ts fails when the page is stale.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadCatalogue } from "../dist/src/providers/catalogue.js";
import { withCatalogue } from "../dist/src/providers/catalogueDoc.js";

const page = join(dirname(fileURLToPath(import.meta.url)), "..", "docs", "providers.md");
const before = readFileSync(page, "utf8");
const after = withCatalogue(before, [...loadCatalogue().values()]);
if (after === before) {
  process.stdout.write("docs/providers.md is up to date\n");
} else {
  writeFileSync(page, after);
  process.stdout.write("docs/providers.md: catalogue section regenerated\n");
}
