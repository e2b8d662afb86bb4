import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveSecrets } from "./secrets.js";

const root = mkdtempSync(join(tmpdir(), "gk-secrets-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

describe("generated secrets", () => {
  it("are 0600 files in a 0700 data directory whatever the umask, and read back on the next start", () => {
    const saved = process.umask(0);
    try {
      const dir = join(root, "data");
      const url = `sqlite:${join(dir, "grantkeeper.db")}`;
      const first = resolveSecrets(url, undefined, undefined);
      expect(first.generated).toEqual([join(dir, "api-key"), join(dir, "encryption-key")]);
      expect(mode(dir)).toBe("700");
      for (const f of first.generated) expect({ f, mode: mode(f) }).toEqual({ f, mode: "600" });
      const again = resolveSecrets(url, undefined, undefined);
      expect(again).toMatchObject({ apiKey: first.apiKey, encryptionKey: first.encryptionKey, generated: [] });
    } finally {
      process.umask(saved);
    }
  });
});
