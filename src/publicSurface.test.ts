/**
 * The library surface is closed: every type a public signature names is
 * exported from the package entry (src/index.ts), and so is every error a
 * public TSDoc `@throws {@link X}` names. A consumer must be able to write
 * down the type of what it passes and gets (`NewIntegration`, `SinkConfig`,
 * `TokenSet`, …) and catch what it is told may be thrown.
 *
 * Walks the exports with the TypeScript compiler's type checker: functions'
 * parameters and results, the public members of exported interfaces and
 * classes (constructors only for classes exported as values: a class exported
 * as a type cannot be constructed by a consumer), recursively through
 * anonymous types, unions and generic arguments. A named type of our own that
 * is not exported is reported with the path that reaches it.
 */
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const ownSources = join(root, "src") + sep;
/** Errors of the language and platform: a `@throws` may name them without an export. */
const BUILTIN_ERRORS = new Set(["Error", "RangeError", "TypeError", "SyntaxError", "AbortError", "DOMException"]);

function program(): ts.Program {
  const configPath = join(root, "tsconfig.json");
  const config = ts.parseJsonConfigFileContent(ts.readConfigFile(configPath, ts.sys.readFile).config, ts.sys, root);
  return ts.createProgram([join(root, "src", "index.ts")], { ...config.options, noEmit: true });
}

interface Finding {
  unexported: Map<string, string>;
  /** Every `@throws {@link X}` seen: the name X and where. */
  throwsNames: Array<[string, string]>;
  /** Public members of the `Grantkeeper` interface. */
  grantkeeperMembers: string[];
}

function walkSurface(): { exportedNames: Set<string>; found: Finding } {
  const p = program();
  const checker = p.getTypeChecker();
  const entry = p.getSourceFile(join(root, "src", "index.ts"))!;
  const exportsOf = checker.getExportsOfModule(checker.getSymbolAtLocation(entry)!);
  const resolveAlias = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const exported = new Set(exportsOf.map(resolveAlias));
  const exportedNames = new Set(exportsOf.map((s) => s.name));
  const found: Finding = { unexported: new Map(), throwsNames: [], grantkeeperMembers: [] };
  const seenTypes = new Set<ts.Type>();
  const seenSymbols = new Set<ts.Symbol>();

  const isOwn = (s: ts.Symbol | undefined) => !!s?.declarations?.some((d) => d.getSourceFile().fileName.startsWith(ownSources));
  const isNamedDeclaration = (s: ts.Symbol) => (s.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.Class | ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Enum)) !== 0;

  // The compiler reads `@throws {@link X}` as a type expression it cannot parse: read the doc's raw text, tag by tag.
  const collectThrows = (s: ts.Symbol, path: string) => {
    for (const d of s.declarations ?? []) {
      for (const doc of ts.getJSDocCommentsAndTags(d)) {
        for (const chunk of doc.getText().split(/\n\s*\*\s*(?=@\w)/)) {
          if (!/^(?:\/\*\*\s*)?@throws\b/.test(chunk)) continue;
          for (const m of chunk.matchAll(/@link\s+([A-Za-z_$][\w$]*)/g)) found.throwsNames.push([m[1]!, path]);
        }
      }
    }
  };

  /** A named type of ours: must be exported; walked once as a surface of its own (it is one, once exported). */
  const named = (s: ts.Symbol, path: string) => {
    if (!isOwn(s) || !isNamedDeclaration(s)) return false;
    if (!exported.has(s) && !found.unexported.has(s.name)) found.unexported.set(s.name, path);
    walkSymbol(s, `${s.name}`, false);
    return true;
  };

  const visit = (t: ts.Type, path: string): void => {
    if (seenTypes.has(t)) return;
    seenTypes.add(t);
    if (t.aliasSymbol) {
      for (const a of t.aliasTypeArguments ?? []) visit(a, `${path}<>`);
      if (named(t.aliasSymbol, path)) return;
      if (!isOwn(t.aliasSymbol)) return; // Partial<…>, Record<…>: their arguments were visited
    }
    if (t.isUnionOrIntersection()) {
      for (const u of t.types) visit(u, path);
      return;
    }
    const s = t.getSymbol();
    if (t.flags & ts.TypeFlags.Object && (t as ts.ObjectType).objectFlags & ts.ObjectFlags.Reference) {
      for (const a of checker.getTypeArguments(t as ts.TypeReference)) visit(a, `${path}<>`);
    }
    if (s && named(s, path)) return;
    if (s && !isOwn(s) && s.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.Class)) return; // Promise, Map, Response…: arguments visited
    for (const sig of [...t.getCallSignatures(), ...t.getConstructSignatures()]) visitSignature(sig, path);
    for (const prop of publicProperties(t)) visitProperty(prop, path);
    for (const info of checker.getIndexInfosOfType(t)) visit(info.type, `${path}[]`);
  };

  const visitSignature = (sig: ts.Signature, path: string) => {
    for (const param of sig.getParameters()) visit(checker.getTypeOfSymbol(param), `${path}(${param.name})`);
    visit(sig.getReturnType(), `${path}()`);
  };

  const publicProperties = (t: ts.Type) =>
    t.getProperties().filter((prop) => {
      if (prop.name.startsWith("#") || prop.name.startsWith("__")) return false;
      const mods = prop.valueDeclaration ? ts.getCombinedModifierFlags(prop.valueDeclaration) : 0;
      return (mods & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) === 0;
    });

  const visitProperty = (prop: ts.Symbol, path: string) => {
    collectThrows(prop, `${path}.${prop.name}`);
    visit(checker.getTypeOfSymbol(prop), `${path}.${prop.name}`);
  };

  function walkSymbol(s: ts.Symbol, path: string, asValue: boolean): void {
    if (seenSymbols.has(s)) return;
    seenSymbols.add(s);
    collectThrows(s, path);
    if (s.flags & ts.SymbolFlags.Class) {
      const instance = checker.getDeclaredTypeOfSymbol(s);
      for (const prop of publicProperties(instance)) visitProperty(prop, path);
      if (asValue) {
        const statics = checker.getTypeOfSymbol(s);
        for (const sig of statics.getConstructSignatures()) visitSignature(sig, `new ${path}`);
        for (const prop of publicProperties(statics)) if (prop.name !== "prototype") visitProperty(prop, path);
      }
      return;
    }
    if (s.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias)) {
      const declared = checker.getDeclaredTypeOfSymbol(s);
      if (s.flags & ts.SymbolFlags.Interface) {
        for (const prop of publicProperties(declared)) visitProperty(prop, path);
        for (const sig of declared.getCallSignatures()) visitSignature(sig, path);
      } else {
        // The alias's own structure: unions, object literals, functions.
        if (declared.isUnionOrIntersection()) for (const u of declared.types) visit(u, path);
        else {
          for (const sig of declared.getCallSignatures()) visitSignature(sig, path);
          for (const prop of publicProperties(declared)) visitProperty(prop, path);
        }
      }
      return;
    }
    if (s.flags & (ts.SymbolFlags.Function | ts.SymbolFlags.Variable)) {
      visit(checker.getTypeOfSymbol(s), path);
    }
  }

  const gk = exportsOf.find((s) => s.name === "Grantkeeper");
  if (gk) found.grantkeeperMembers = checker.getDeclaredTypeOfSymbol(resolveAlias(gk)).getProperties().map((m) => m.name);
  for (const e of exportsOf) {
    const s = resolveAlias(e);
    const typeOnly = e.declarations?.some((d) => ts.isExportSpecifier(d) && (d.isTypeOnly || d.parent.parent.isTypeOnly)) ?? false;
    walkSymbol(s, e.name, !typeOnly);
  }
  return { exportedNames, found };
}

describe("the package's public surface", () => {
  const { exportedNames, found } = walkSurface();

  it("exports every type a public signature names", () => {
    expect([...found.unexported].map(([name, path]) => `${name} (reached from ${path})`)).toEqual([]);
  });

  it("exports every error a public @throws names", () => {
    const missing = found.throwsNames.filter(([name]) => !exportedNames.has(name) && !BUILTIN_ERRORS.has(name)).map(([name, path]) => `${name} (@throws of ${path})`);
    expect(missing).toEqual([]);
  });

  it("finds the surface it checks (a walk that reached nothing would pass vacuously)", () => {
    expect(exportedNames.has("createGrantkeeper")).toBe(true);
    expect(found.throwsNames.length).toBeGreaterThan(10);
    expect(found.grantkeeperMembers).toContain("connections");
  });

  it("does not hand out the store or the refresh engine", () => {
    expect(found.grantkeeperMembers).not.toContain("store");
    expect(found.grantkeeperMembers).not.toContain("engine");
  });
});
