/**
 * What the npm package ships: a LICENSE matching package.json's `license`,
 * and source maps that resolve from inside the package — each map carries
 * the source it points to (`inlineSources`), since `src/` is not shipped.
 * Reads the build in dist/ (`npm test` builds first).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { license: string; files: string[] };

function mapsUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? mapsUnder(join(dir, e.name)) : e.name.endsWith(".js.map") ? [join(dir, e.name)] : []));
}

describe("the package", () => {
  it("ships the Apache-2.0 LICENSE that package.json names", () => {
    expect(pkg.license).toBe("Apache-2.0");
    const text = readFileSync(join(root, "LICENSE"), "utf8");
    expect(text).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(text).toContain("END OF TERMS AND CONDITIONS");
  });

  it("ships docs/troubleshooting.md: the dashboard's runbook page reads its code tables", () => {
    expect(pkg.files).toContain("docs/troubleshooting.md");
  });

  it("ships source maps whose sources resolve inside the package", () => {
    const dist = join(root, "dist", "src");
    expect(existsSync(dist), "run `npm run build` first").toBe(true);
    const maps = mapsUnder(dist);
    expect(maps.length).toBeGreaterThan(50);
    const shipped = (path: string) => pkg.files.some((f) => path.startsWith(join(root, f)));
    const unresolved: string[] = [];
    for (const file of maps) {
      const map = JSON.parse(readFileSync(file, "utf8")) as { sources: string[]; sourcesContent?: Array<string | null> };
      map.sources.forEach((source, i) => {
        const target = resolve(dirname(file), source);
        if (!(typeof map.sourcesContent?.[i] === "string" || (shipped(target) && existsSync(target)))) unresolved.push(`${file}: ${source}`);
      });
    }
    expect(unresolved).toEqual([]);
  });
});
