import { describe, expect, it } from "vitest";
import { ownField, setOwnField } from "./records.js";

describe("records keyed by outside names", () => {
  it("sets and reads __proto__, constructor and toString as fields, and the record stays a plain object", () => {
    const r: Record<string, string> = {};
    for (const name of ["__proto__", "constructor", "toString", "x"]) setOwnField(r, name, `v-${name}`);
    expect(Object.getPrototypeOf(r)).toBe(Object.prototype);
    expect(Object.entries(r)).toEqual([["__proto__", "v-__proto__"], ["constructor", "v-constructor"], ["toString", "v-toString"], ["x", "v-x"]]);
    expect(JSON.parse(JSON.stringify({ ...r }))).toEqual(JSON.parse('{"__proto__":"v-__proto__","constructor":"v-constructor","toString":"v-toString","x":"v-x"}'));
  });

  it("reads an inherited member as absent", () => {
    expect(ownField({}, "constructor")).toBeUndefined();
    expect(ownField({}, "__proto__")).toBeUndefined();
    expect(ownField({ a: 1 }, "a")).toBe(1);
  });
});
