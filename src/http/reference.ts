/**
 * `GET /reference`: the OpenAPI document (src/http/openapi.ts) rendered as
 * one server-side HTML page — every operation with its method, path,
 * security, parameters, request body and answers. No script, no external
 * stylesheet or font (our users run grantkeeper in private networks;
 * issue 15 item 8); a strict CSP says so to the browser.
 */
import { openApiDocument } from "./openapi.js";

const escape = (s: string) => s.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!);

/** Inline code spans of the document's Markdown-ish descriptions (`x`), after escaping. */
const text = (s: string | undefined) => (s ? escape(s).replace(/`([^`]+)`/g, "<code>$1</code>") : "");

type Json = Record<string, any>;

function schemaBlock(schema: unknown): string {
  if (schema === undefined || (typeof schema === "object" && schema !== null && Object.keys(schema).length === 0)) return "";
  const ref = (schema as Json | undefined)?.$ref as string | undefined;
  if (ref) {
    const name = ref.split("/").pop()!;
    return `<a href="#schema-${escape(name)}">${escape(name)}</a>`;
  }
  return `<details><summary>schema</summary><pre>${escape(JSON.stringify(schema, null, 2))}</pre></details>`;
}

function operation(path: string, method: string, op: Json): string {
  const security = (op.security as Json[]).length === 0 ? "public" : (op.security as Json[]).some((s) => Object.keys(s).length === 0) ? "public or API key" : "API key";
  const params = (op.parameters as Json[] | undefined) ?? [];
  const rows = params.map((p) => `<tr><td><code>${escape(p.name)}</code></td><td>${escape(p.in)}</td><td>${p.required ? "yes" : "no"}</td><td>${escape(JSON.stringify(p.schema))}</td><td>${text(p.description)}</td></tr>`).join("");
  const body = op.requestBody ? Object.entries(op.requestBody.content as Json).map(([type, c]) => `<p>Body <code>${escape(type)}</code>${op.requestBody.required ? " (required)" : ""}: ${schemaBlock((c as Json).schema)}</p>`).join("") : "";
  const answers = Object.entries(op.responses as Json)
    .map(([status, r]) => {
      const content = r.content ? Object.entries(r.content as Json).map(([type, c]) => ` <code>${escape(type)}</code> ${schemaBlock((c as Json).schema)}`).join("") : "";
      return `<li><strong>${escape(status)}</strong> ${text(r.description)}${content}</li>`;
    })
    .join("");
  return `<section class="op" id="${escape(op.operationId)}">
<h3><span class="m m-${escape(method)}">${escape(method.toUpperCase())}</span> <code>${escape(path)}</code></h3>
<p>${text(op.summary)} <span class="sec">${security}</span> <span class="id">operationId <code>${escape(op.operationId)}</code></span></p>
${op.description ? `<p>${text(op.description)}</p>` : ""}
${rows ? `<table><thead><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th><th>meaning</th></tr></thead><tbody>${rows}</tbody></table>` : ""}
${body}
<ul>${answers}</ul>
</section>`;
}

let cached: string | undefined;

/** The reference page (built once). */
export function referencePage(): string {
  if (cached) return cached;
  const doc = openApiDocument() as Json;
  const byTag = new Map<string, string[]>();
  const toc = new Map<string, string[]>();
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const [method, op] of Object.entries(item as Json)) {
      const tag = (op as Json).tags[0] as string;
      (byTag.get(tag) ?? byTag.set(tag, []).get(tag)!).push(operation(path, method, op as Json));
      (toc.get(tag) ?? toc.set(tag, []).get(tag)!).push(`<li><a href="#${escape((op as Json).operationId)}">${escape(method.toUpperCase())} ${escape(path)}</a></li>`);
    }
  }
  const tags = (doc.tags as Json[]).filter((t) => byTag.has(t.name));
  const schemas = Object.entries(doc.components.schemas as Json).map(([name, s]) => `<section id="schema-${escape(name)}"><h3>${escape(name)}</h3><pre>${escape(JSON.stringify(s, null, 2))}</pre></section>`).join("");
  cached = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>grantkeeper API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fff}
nav{position:fixed;top:0;bottom:0;left:0;width:18rem;overflow:auto;padding:1rem;border-right:1px solid #ccc;background:#f6f6f6}
main{margin-left:20rem;padding:1rem 2rem;max-width:60rem}
nav ul{padding-left:1rem;margin:.25rem 0 .75rem}nav a{color:#0b4f8a;font-size:13px}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f3f3f3;padding:.5rem;overflow:auto}
.op{border-top:1px solid #ddd;padding:.5rem 0}.m{display:inline-block;min-width:4.5rem;padding:0 .3rem;border-radius:3px;color:#fff;background:#444;text-align:center}
.m-get{background:#1d5e9e}.m-post{background:#1e6b34}.m-put,.m-patch{background:#8a5300}.m-delete{background:#a11d1d}
.sec{padding:0 .3rem;border:1px solid #666;border-radius:3px;font-size:12px}.id{color:#444;font-size:12px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .4rem;text-align:left;vertical-align:top}
a:focus,summary:focus{outline:2px solid #0b4f8a}
</style></head><body>
<nav aria-label="Operations"><p><strong>${escape(doc.info.title)} ${escape(doc.info.version)}</strong></p>${tags.map((t) => `<p><a href="#tag-${escape(t.name)}">${escape(t.name)}</a></p><ul>${toc.get(t.name)!.join("")}</ul>`).join("")}<p><a href="#schemas">schemas</a></p></nav>
<main><h1>grantkeeper API reference</h1><p>${text(doc.info.description)}</p><p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${escape(doc.openapi)}).</p>
${tags.map((t) => `<h2 id="tag-${escape(t.name)}">${escape(t.name)}</h2><p>${text(t.description)}</p>${byTag.get(t.name)!.join("\n")}`).join("\n")}
<h2 id="schemas">Schemas</h2>${schemas}
</main></body></html>`;
  return cached;
}
