import { describe, expect, it } from "vitest";

import type { JobView, QueueCountsView, QueuePage } from "./api";
import { canCancel, canRetry, EMPTY_COUNTS, PAGE, QueueModel, spokenSummary } from "./queue";

function job(id: number, overrides: Partial<JobView> = {}): JobView {
  return {
    id,
    name: `f${id}.jpg`,
    path: `/tmp/f${id}.jpg`,
    profile: "sandbox",
    folder: "/uploads",
    size: 100,
    state: "queued",
    attempts: 0,
    error: null,
    url: null,
    bytes_sent: 0,
    metadata: null,
    duplicate_of: null,
    ...overrides,
  };
}

function counts(overrides: Partial<QueueCountsView> = {}): QueueCountsView {
  return { ...EMPTY_COUNTS, ...overrides };
}

function page(offset: number, jobs: JobView[], c: Partial<QueueCountsView> = {}): QueuePage {
  return { offset, jobs, counts: counts({ total: offset + jobs.length, ...c }) };
}

describe("QueueModel", () => {
  it("holds one window of rows at their queue positions", () => {
    const queue = new QueueModel();
    queue.loadPage(page(1000, [job(1001), job(1002)], { total: 5000 }));
    expect(queue.total).toBe(5000);
    expect(queue.at(1000)?.id).toBe(1001);
    expect(queue.at(1001)?.id).toBe(1002);
    expect(queue.at(999)).toBeUndefined();
    expect(queue.at(1002)).toBeUndefined();
  });

  it("does not let a page read before newer counts shrink the queue back", () => {
    const queue = new QueueModel();
    queue.setCounts(counts({ total: 6 }));
    const epoch = queue.epoch;
    // While the page is read, four more files are queued and their counts arrive first.
    queue.setCounts(counts({ total: 10 }));
    queue.loadPage(page(0, Array.from({ length: 6 }, (_, i) => job(i + 1))), epoch);
    expect(queue.total).toBe(10);
    // The rows it brought are shown; the missing ones are asked for.
    expect(queue.at(5)?.id).toBe(6);
    expect(queue.wanted(0, 26)).toEqual({ offset: 0, limit: PAGE });
    // A page read after the newest counts brings its own.
    queue.loadPage(page(0, Array.from({ length: 10 }, (_, i) => job(i + 1))), queue.epoch);
    expect(queue.total).toBe(10);
    expect(queue.wanted(0, 26)).toBeNull();
  });

  it("asks for a page centred on the rows in view, only when they are not loaded", () => {
    const queue = new QueueModel();
    queue.setCounts(counts({ total: 100_000 }));
    expect(queue.wanted(0, 12)).toEqual({ offset: 0, limit: PAGE });
    queue.loadPage(page(0, Array.from({ length: PAGE }, (_, i) => job(i + 1)), { total: 100_000 }));
    expect(queue.wanted(10, 30)).toBeNull();
    expect(queue.wanted(10, 30, true)).toEqual({ offset: 0, limit: PAGE });
    expect(queue.wanted(50_000, 50_012)).toEqual({ offset: 50_006 - PAGE / 2, limit: PAGE });
    // Near the end the page ends at the last row.
    expect(queue.wanted(99_990, 100_000)).toEqual({ offset: 100_000 - PAGE, limit: PAGE });
  });

  it("updates loaded rows in place and ignores the others", () => {
    const queue = new QueueModel();
    queue.loadPage(page(0, [job(1), job(2), job(3)]));
    queue.applyJobs([job(2, { state: "running" }), job(99, { state: "done" })]);
    expect(queue.get(2)?.state).toBe("running");
    expect(queue.get(99)).toBeUndefined();
  });

  it("sums the queue from its counts and the running jobs' live progress", () => {
    const queue = new QueueModel();
    queue.loadPage(
      page(0, [job(1, { state: "running" }), job(2, { state: "done", bytes_sent: 100 }), job(3, { state: "failed" })], {
        total: 300_000,
        running: 2,
        done: 1,
        failed: 1,
        finished: 2,
        queued: 299_996,
        bytes_total: 30_000_000,
        bytes_done: 100,
      }),
    );
    queue.applyProgress([{ id: 1, bytes_sent: 40, total: 100, speed: 1000, eta_secs: 0.06 }]);
    // A running job outside the window still counts in the totals.
    queue.applyProgress([{ id: 77_000, bytes_sent: 60, total: 100, speed: 500, eta_secs: null }]);
    expect(queue.get(1)).toMatchObject({ bytes_sent: 40, speed: 1000, eta_secs: 0.06 });
    expect(queue.summary()).toEqual({
      total: 300_000,
      done: 1,
      failed: 1,
      active: 299_998,
      finished: 2,
      bytesTotal: 30_000_000,
      bytesSent: 200,
      speed: 1500,
    });
    // Once nothing runs, no stale speed is left.
    queue.setCounts(counts({ total: 300_000, done: 300_000, bytes_total: 30_000_000, bytes_done: 30_000_000 }));
    expect(queue.summary().speed).toBe(0);
  });

  it("keeps live progress when a running job's record arrives, resets it when it ends", () => {
    const queue = new QueueModel();
    queue.loadPage(page(0, [job(1, { state: "running" })], { running: 1 }));
    queue.applyProgress([{ id: 1, bytes_sent: 70, total: 100, speed: 5, eta_secs: 6 }]);
    queue.applyJobs([job(1, { state: "running", bytes_sent: 0 })]);
    expect(queue.get(1)?.bytes_sent).toBe(70);
    // A page read while it runs keeps the live figure too.
    queue.loadPage(page(0, [job(1, { state: "running", bytes_sent: 0 })], { running: 1 }));
    expect(queue.get(1)?.bytes_sent).toBe(70);
    queue.applyJobs([job(1, { state: "done", bytes_sent: 100 })]);
    expect(queue.get(1)).toMatchObject({ bytes_sent: 100, speed: 0, eta_secs: null });
  });

  it("costs the same for a million jobs as for ten", () => {
    const queue = new QueueModel();
    const rows = Array.from({ length: PAGE }, (_, i) => job(500_001 + i, { state: i < 8 ? "running" : "queued" }));
    const started = performance.now();
    for (let round = 0; round < 200; round += 1) {
      queue.loadPage(page(500_000, rows, { total: 1_000_000, running: 8 }));
      queue.applyProgress(
        Array.from({ length: 8 }, (_, i) => ({ id: 500_001 + i, bytes_sent: round, total: 100, speed: 1, eta_secs: 1 })),
      );
      queue.summary();
    }
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe("actions per state", () => {
  it("offers cancel and retry only where they apply", () => {
    expect(canCancel("running")).toBe(true);
    expect(canCancel("done")).toBe(false);
    expect(canRetry("failed")).toBe(true);
    expect(canRetry("needs_attention")).toBe(true);
    expect(canRetry("running")).toBe(false);
  });
});

describe("spokenSummary", () => {
  const base = { total: 0, done: 0, failed: 0, active: 0, finished: 0, bytesTotal: 0, bytesSent: 0, speed: 0 };
  it("says the counts, not the bytes or the speed", () => {
    expect(spokenSummary({ ...base, total: 1200, done: 3, active: 1197, bytesSent: 10, speed: 99 })).toBe(
      "3 of 1,200 uploaded, 1,197 to go",
    );
    expect(spokenSummary({ ...base, total: 3, done: 2, failed: 1, finished: 3 })).toBe("2 of 3 uploaded, 1 failed");
  });
  it("says nothing for an empty queue", () => {
    expect(spokenSummary(base)).toBe("");
  });
});
