import { describe, expect, it } from "vitest";
import { defaultEpisodePolicy, stepEpisode, type AlertKind, type Episode, type EpisodeInput } from "./alertEpisodes.js";

const MIN = 60_000;

/** Feed inputs at times (ms) and collect every alert sent, with its time. */
function run(inputs: Array<[number, EpisodeInput]>, policy = defaultEpisodePolicy) {
  let ep: Episode | undefined;
  const out: Array<[number, AlertKind]> = [];
  for (const [at, input] of inputs) {
    const step = stepEpisode(ep, input, at, policy);
    ep = step.episode;
    for (const a of step.alerts) out.push([at, a]);
  }
  return { out, ep };
}
const fail = (n: number): EpisodeInput => ({ type: "failure", consecutiveFailures: n });
const ok: EpisodeInput = { type: "success" };

describe("alert episodes", () => {
  it.each<[string, Array<[number, EpisodeInput]>, Array<[number, AlertKind]>]>([
    ["first failure alerts once", [[0, fail(1)]], [[0, "refresh_failed"]]],
    ["second failure is silent", [[0, fail(1)], [MIN, fail(2)]], [[0, "refresh_failed"]]],
    ["third failure escalates (escalateAfter 3)", [[0, fail(1)], [1, fail(2)], [2, fail(3)]], [[0, "refresh_failed"], [2, "refresh_escalated"]]],
    ["escalation happens once", [[0, fail(1)], [1, fail(3)], [2, fail(4)], [3, fail(9)]], [[0, "refresh_failed"], [1, "refresh_escalated"]]],
    ["recovery mode alerts once", [[0, fail(1)], [1, { type: "recovery_entered" }], [2, { type: "recovery_entered" }]], [[0, "refresh_failed"], [1, "recovery_entered"]]],
    ["success sends the all-clear", [[0, fail(1)], [5 * MIN, ok]], [[0, "refresh_failed"], [5 * MIN, "recovered"]]],
    ["success without an open episode is silent", [[0, ok], [1, ok]], []],
    ["invalidation alerts once", [[0, { type: "invalidated" }], [1, { type: "invalidated" }]], [[0, "grant_invalidated"]]],
    ["re-auth after invalidation is the all-clear", [[0, fail(1)], [1, { type: "invalidated" }], [10 * MIN, ok]], [[0, "refresh_failed"], [1, "grant_invalidated"], [10 * MIN, "recovered"]]],
    ["provider misconfiguration alerts once", [[0, { type: "provider_misconfigured" }], [1, { type: "provider_misconfigured" }]], [[0, "provider_misconfigured"]]],
    ["API auth rejections alert once; an accepted call is the all-clear", [[0, { type: "api_auth_rejected" }], [1, { type: "api_auth_rejected" }], [5 * MIN, ok]], [[0, "api_auth_rejected"], [5 * MIN, "recovered"]]],
    ["API auth rejections in a refresh-failure episode add their alert to it", [[0, fail(1)], [1, { type: "api_auth_rejected" }], [2, ok]], [[0, "refresh_failed"], [1, "api_auth_rejected"], [2, "recovered"]]],
  ])("%s", (_, inputs, expected) => {
    expect(run(inputs).out).toEqual(expected);
  });

  it("flapping input (fail/success every minute for an hour) gives one failure alert and one all-clear", () => {
    const inputs: Array<[number, EpisodeInput]> = [];
    for (let m = 0; m < 60; m++) inputs.push([m * MIN, m % 2 === 0 ? fail(1) : ok]);
    expect(run(inputs).out.map(([, k]) => k)).toEqual(["refresh_failed", "recovered"]);
  });

  it("a failure just inside the flap window continues the episode; just outside it opens a new one", () => {
    const w = defaultEpisodePolicy.flapWindowMs;
    expect(run([[0, fail(1)], [1, ok], [1 + w, fail(1)]]).out.map(([, k]) => k)).toEqual(["refresh_failed", "recovered"]);
    expect(run([[0, fail(1)], [1, ok], [2 + w, fail(1)]]).out.map(([, k]) => k)).toEqual(["refresh_failed", "recovered", "refresh_failed"]);
  });

  it("without first-failure alerts, an episode that never escalated resolves silently", () => {
    const p = { ...defaultEpisodePolicy, alertOnFirstFailure: false };
    expect(run([[0, fail(1)], [1, fail(2)], [2, ok]], p).out).toEqual([]);
    expect(run([[0, fail(1)], [1, fail(2)], [2, fail(3)], [3, ok]], p).out.map(([, k]) => k)).toEqual(["refresh_escalated", "recovered"]);
  });

  it("dead jobs alert once per flap window per subject, not once per job", () => {
    const w = defaultEpisodePolicy.flapWindowMs;
    const dead: EpisodeInput = { type: "job_dead" };
    expect(run([[0, dead], [1, dead], [MIN, dead], [MIN + w + 1, dead]]).out).toEqual([[0, "job_dead"], [MIN + w + 1, "job_dead"]]);
  });

  it("a breaker episode alerts on opening and on closing", () => {
    expect(run([[0, { type: "breaker_opened" }], [1, { type: "breaker_opened" }], [2 * MIN, { type: "breaker_closed" }]]).out).toEqual([[0, "breaker_opened"], [2 * MIN, "breaker_closed"]]);
  });

  it("a provider's breaker episode ends with the breaker's all-clear, whichever comes first: the close, or a connection's success", () => {
    const opened: EpisodeInput = { type: "breaker_opened" };
    expect(run([[0, opened], [2 * MIN, ok], [2 * MIN + 1, { type: "breaker_closed" }], [2 * MIN + 2, ok]]).out).toEqual([[0, "breaker_opened"], [2 * MIN, "breaker_closed"]]);
    expect(run([[0, opened], [2 * MIN, { type: "breaker_closed" }], [2 * MIN + 1, ok]]).out).toEqual([[0, "breaker_opened"], [2 * MIN, "breaker_closed"]]);
  });

  it("the all-clear says how long the episode lasted", () => {
    const first = stepEpisode(undefined, fail(1), 1_000);
    const done = stepEpisode(first.episode, ok, 61_000);
    expect(done).toMatchObject({ alerts: ["recovered"], durationMs: 60_000 });
  });
});
