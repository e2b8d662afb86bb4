/**
 * The dashboard's static assets, served from our own origin (no CDN, no
 * external font: our users run grantkeeper in private networks): uPlot's
 * script and style sheet from `node_modules/uplot/dist`, and our style sheet
 * and chart script. Each URL carries a hash of its content, so it can be
 * cached for a year (`immutable`) and a new version gets a new URL.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

/** One served file. */
export interface Asset {
  /** URL path under `/dashboard/assets/`, with its content hash: `dashboard.3f2a9c1d.css`. */
  file: string;
  contentType: string;
  body: string;
}

const CSS = `
:root{--fg:#1f2328;--muted:#57606a;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--accent:#0550ae;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e}
*{box-sizing:border-box}
body{font:0.95rem/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:var(--bg);color:var(--fg)}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid #0969da;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem}
.skip:focus{left:.5rem}
header.top{background:#24292f;color:#fff;display:flex;flex-wrap:wrap;align-items:center;gap:1rem;padding:.5rem 1rem}
header.top .brand{font-weight:700;margin-right:1rem}
header.top nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin:0;padding:0}
header.top nav a{color:#fff;text-decoration:none;padding:.25rem .1rem}
header.top nav a[aria-current=page]{border-bottom:3px solid #fff}
header.top form{margin-left:auto}
main{max-width:80rem;margin:0 auto;padding:1rem 1.25rem 3rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(13rem,1fr));gap:1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.75rem 1rem}
.card h2{margin-top:0}
dl.counts{display:grid;grid-template-columns:1fr auto;gap:.15rem 1rem;margin:0}
dl.counts dt{color:var(--muted)}dl.counts dd{margin:0;font-variant-numeric:tabular-nums;text-align:right;font-weight:600}
dl.counts dd.alarm{color:var(--bad)}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line)}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eaeef2;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.state{display:inline-block;padding:0 .45rem;border-radius:1rem;border:1px solid currentColor;font-size:.85rem;font-weight:600;white-space:nowrap}
.s-ready,.s-ENABLED,.s-succeeded,.s-closed{color:var(--ok)}
.s-degraded,.s-syncing,.s-pending,.s-DISABLED,.s-parked,.s-faulted,.s-warning,.s-half_open{color:var(--warn)}
.s-error,.s-ERROR,.s-dead,.s-failed,.s-critical,.s-open{color:var(--bad)}
.s-info,.s-queued,.s-running,.s-discarded{color:var(--muted)}
form.inline{display:inline}
button{font:inherit;padding:.3rem .75rem;border-radius:6px;border:1px solid #8c959f;background:#f6f8fa;color:var(--fg);cursor:pointer}
button.primary{background:#1f883d;border-color:#1a7f37;color:#fff}
button.danger{color:var(--bad)}
header.top button{background:transparent;color:#fff;border-color:#fff}
.filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end;margin-bottom:1rem}
.filters label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted)}
input,select{font:inherit;padding:.3rem .4rem;border:1px solid #8c959f;border-radius:6px;background:#fff;color:var(--fg)}
.notice{padding:.6rem 1rem;border-radius:6px;border:1px solid var(--ok);background:#dafbe1;margin-bottom:1rem}
.problem{padding:.6rem 1rem;border-radius:6px;border:1px solid var(--bad);background:#ffebe9;margin-bottom:1rem}
.muted{color:var(--muted)}
.link-box{width:100%;font-family:ui-monospace,monospace;font-size:.85rem}
.chart{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.5rem;min-height:2rem}
main.narrow{max-width:28rem;margin:10vh auto 0;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1.5rem 2rem}
dl.facts{grid-template-columns:max-content 1fr;max-width:56rem}dl.facts dd{text-align:left;font-weight:400}
ul.tabs{list-style:none;display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;padding:0;margin:0 0 1rem}
ul.tabs a[aria-current=page]{font-weight:700}
.sign-in label{display:block;margin:.75rem 0 .25rem;font-weight:600}
.sign-in input{width:100%}
.sign-in button{margin-top:1rem}
code{font-family:ui-monospace,monospace;font-size:.9em}
time{white-space:nowrap}
`;

// Reads the JSON the page embeds (no inline script: the CSP allows only our own files) and draws it with uPlot.
const CHART_JS = `(function(){
  var el=document.getElementById("refresh-outcomes-data");var box=document.getElementById("refresh-outcomes-chart");
  if(!el||!box||typeof uPlot==="undefined")return;
  var rows=JSON.parse(el.textContent);
  var xs=rows.map(function(r){return r.hourStartMs/1000});
  var data=[xs,rows.map(function(r){return r.succeeded}),rows.map(function(r){return r.transient}),rows.map(function(r){return r.permanent})];
  // Each hour's count is drawn as a step over that hour: one more point closes the last (current) hour.
  if(xs.length){data.forEach(function(s,i){s.push(i===0?s[s.length-1]+3600:s[s.length-1])})}
  var line=function(label,colour,dash){return {label:label,stroke:colour,width:2,dash:dash,points:{show:false},paths:uPlot.paths.stepped({align:1})}};
  var opts={width:Math.max(320,box.clientWidth-16),height:240,
    scales:{y:{range:function(u,min,max){return [0,Math.max(1,max)]}}},
    series:[{},line("succeeded","#1a7f37"),line("transient failures","#9a6700",[6,3]),line("permanent failures","#cf222e",[2,2])],
    axes:[{},{label:"refreshes per hour",incrs:[1,2,5,10,20,50,100,200,500,1000,2000,5000,10000],values:function(u,vals){return vals.map(function(v){return String(v)})}}]};
  box.textContent="";new uPlot(opts,data,box);
})();`;

function asset(name: string, ext: string, contentType: string, body: string): Asset {
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 10);
  return { file: `${name}.${hash}.${ext}`, contentType, body };
}

const require = createRequire(import.meta.url);
const uplotFile = (f: string) => readFileSync(require.resolve(`uplot/dist/${f}`), "utf8");

/** The assets, read once at start. */
export const ASSETS = (() => {
  const css = asset("dashboard", "css", "text/css; charset=utf-8", CSS);
  const chart = asset("chart", "js", "text/javascript; charset=utf-8", CHART_JS);
  const uplotCss = asset("uPlot", "css", "text/css; charset=utf-8", uplotFile("uPlot.min.css"));
  const uplotJs = asset("uPlot", "js", "text/javascript; charset=utf-8", uplotFile("uPlot.iife.min.js"));
  return { css, chart, uplotCss, uplotJs, byFile: new Map([css, chart, uplotCss, uplotJs].map((a) => [a.file, a])) };
})();

/** URL of an asset. */
export const assetUrl = (a: Asset) => `/dashboard/assets/${a.file}`;
