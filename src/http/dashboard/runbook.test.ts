import { describe, expect, it } from "vitest";
import { parseRunbook, runbook, runbookAnchor, runbookCode } from "./runbook.js";

describe("the dashboard runbook (docs/troubleshooting.md)", () => {
  it("reads the connection and job code tables of the shipped document", () => {
    const sections = runbook();
    expect(sections.map((s) => s.kind)).toEqual(["connection", "job"]);
    expect(sections[0]!.headers).toEqual(["class", "cause", "fix"]);
    expect(runbookCode("connection", "invalid_grant")).toBe("invalid_grant");
    expect(runbookCode("job", "connection_error")).toBe("connection_error");
  });

  it("files a concrete status under its family, and leaves unknown codes unlinked", () => {
    expect(runbookCode("job", "http_503")).toBe("http_5xx");
    expect(runbookCode("connection", "http_404")).toBe("http_4xx");
    expect(runbookCode("connection", "made_up_code")).toBeUndefined();
    expect(runbookAnchor("connection", "a b<c")).toBe("connection-a_b_c");
  });

  it("parses rows naming several codes, and stops at the next section", () => {
    const md = "## `lastError.code` of a job\n\n| code | state | cause | fix |\n|---|---|---|---|\n| `a`, `b` | x | y | z |\n\n## Checks\n\n| `c` | 1 | 2 | 3 |\n";
    expect(parseRunbook(md)).toEqual([{ kind: "job", title: "lastError.code of a job", headers: ["state", "cause", "fix"], entries: [{ codes: ["a", "b"], cells: ["x", "y", "z"] }] }]);
  });
});
