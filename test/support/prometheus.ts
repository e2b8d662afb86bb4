/**
 * Parse Prometheus text exposition with a real parser (`prom2javascript`:
 * it keeps labelled histograms apart; `parse-prometheus-text-format` merges
 * every series of a histogram into one and drops their labels) and read
 * samples back by name and labels.
 */
import { Readable } from "node:stream";
import { getMetricsFromStream, type PromData, type PromHistogramData, type PromMetrics } from "prom2javascript";

export type { PromMetrics };

/** Parse exposition text; throws on a line that is not valid text format. */
export function parseExposition(text: string): Promise<PromMetrics> {
  return getMetricsFromStream(Readable.from([text]));
}

function matches(labels: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}

/** Value of the one counter/gauge sample of `name` whose labels include `labels`; undefined when none. */
export function valueOf(metrics: PromMetrics, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = metrics[name];
  if (!family) return undefined;
  const found = (family.data as PromData[]).filter((d) => matches(d.labels, labels));
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} series`);
  return found[0]?.value;
}

/** The histogram series of `name` whose labels include `labels`. */
export function histogramOf(metrics: PromMetrics, name: string, labels: Record<string, string> = {}): PromHistogramData | undefined {
  const family = metrics[name];
  if (!family || family.type !== "histogram") return undefined;
  return (family.data as PromHistogramData[]).find((d) => matches(d.labels, labels));
}

/** Every label value of every series. */
export function allLabelValues(metrics: PromMetrics): string[] {
  return Object.values(metrics).flatMap((f) => (f.data as Array<{ labels: Record<string, string> }>).flatMap((d) => Object.values(d.labels)));
}
