import { describe, expect, it } from "vitest";
import { allLabelValues, histogramOf, parseExposition, valueOf } from "../../test/support/prometheus.js";
import { Metrics, type MetricsSources } from "./metrics.js";

const sources = (over: Partial<MetricsSources> = {}): MetricsSources => ({
  jobsByState: async () => ({ queued: 4, parked: 2 }),
  connectionsByState: async () => ({ ready: 3, error: 1 }),
  openBreakers: async () => 1,
  ...over,
});

describe("Metrics", () => {
  it("counts events and renders parseable text with _total counters and _seconds histograms", async () => {
    const m = new Metrics();
    m.refreshAttempt("refreshed", "none", "ok");
    m.refreshAttempt("failed", "transient", "server_error");
    m.refreshAttempt("failed", "transient", "server_error");
    m.refreshCallDuration("none", 0.2);
    m.refreshExpiryLead(-5);
    m.refreshExpiryLead(290);
    m.connectionRecovered(120, 60);
    m.connectionRecovered(30);
    m.jobRun("failed");
    m.alertSent("recovered", "ops-slack");
    const text = await m.render();
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const parsed = await parseExposition(text);
    expect(valueOf(parsed, "grantkeeper_refresh_attempts_total", { result: "failed", class: "transient", reason: "server_error" })).toBe(2);
    expect(valueOf(parsed, "grantkeeper_job_runs_total", { outcome: "failed" })).toBe(1);
    expect(valueOf(parsed, "grantkeeper_alerts_sent_total", { kind: "recovered", sink: "ops-slack" })).toBe(1);
    expect(histogramOf(parsed, "grantkeeper_refresh_duration_seconds", { class: "none" })).toMatchObject({ count: 1, sum: 0.2 });
    // Negative lead: refreshed after the old token expired.
    expect(histogramOf(parsed, "grantkeeper_refresh_expiry_lead_seconds")).toMatchObject({ count: 2, sum: 285, buckets: { "0": 1, "300": 2 } });
    expect(histogramOf(parsed, "grantkeeper_connection_degraded_seconds")).toMatchObject({ count: 2, sum: 150 });
    expect(histogramOf(parsed, "grantkeeper_recovery_duration_seconds")).toMatchObject({ count: 1, sum: 60 });
    for (const name of Object.keys(parsed)) {
      expect(name).toMatch(/^grantkeeper_[a-z_]+$/);
      if (parsed[name]!.type === "counter") expect(name).toMatch(/_total$/);
      if (parsed[name]!.type === "histogram") expect(name).toMatch(/_seconds$/);
    }
  });

  it("reads store-backed gauges at scrape time, every known state present", async () => {
    const m = new Metrics();
    let queued = 4;
    m.attach(sources({ jobsByState: async () => ({ queued, parked: 2 }) }));
    let parsed = await parseExposition(await m.render());
    expect(valueOf(parsed, "grantkeeper_jobs", { state: "queued" })).toBe(4);
    expect(valueOf(parsed, "grantkeeper_jobs", { state: "parked" })).toBe(2);
    expect(valueOf(parsed, "grantkeeper_jobs", { state: "dead" })).toBe(0);
    expect(valueOf(parsed, "grantkeeper_connections", { state: "error" })).toBe(1);
    expect(valueOf(parsed, "grantkeeper_connections", { state: "degraded" })).toBe(0);
    expect(valueOf(parsed, "grantkeeper_breakers_open")).toBe(1);
    queued = 0;
    parsed = await parseExposition(await m.render());
    expect(valueOf(parsed, "grantkeeper_jobs", { state: "queued" })).toBe(0);
  });

  it("a store that cannot be read leaves its series out and counts the error; the scrape still answers", async () => {
    const m = new Metrics();
    m.attach(sources({ jobsByState: () => Promise.reject(new Error("store down")) }));
    const parsed = await parseExposition(await m.render());
    expect(valueOf(parsed, "grantkeeper_jobs", { state: "queued" })).toBeUndefined();
    expect(valueOf(parsed, "grantkeeper_metrics_collect_errors_total", { gauge: "jobs" })).toBe(1);
    expect(valueOf(parsed, "grantkeeper_connections", { state: "ready" })).toBe(3);
  });

  it("keeps instances apart (own registry each) and exports process metrics only when asked", async () => {
    const a = new Metrics();
    const b = new Metrics({ processMetrics: true });
    a.jobDead();
    const pa = await parseExposition(await a.render());
    expect(valueOf(pa, "grantkeeper_jobs_dead_total")).toBe(1);
    expect(Object.keys(pa).some((n) => n.startsWith("process_"))).toBe(false);
    expect(allLabelValues(pa)).not.toContain("undefined");
    // Not parsed: prom-client writes an unsampled event-loop lag as "Nan", which the parser refuses.
    const tb = await b.render();
    expect(tb).toMatch(/^grantkeeper_jobs_dead_total 0$/m);
    expect(tb).toMatch(/^process_cpu_user_seconds_total /m);
  });
});
