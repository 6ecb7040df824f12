import { describe, expect, it } from "vitest";

import type { JobView } from "./api";
import { canCancel, canRetry, QueueModel } from "./queue";

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
    ...overrides,
  };
}

describe("QueueModel", () => {
  it("keeps jobs in id order and updates them in place", () => {
    const queue = new QueueModel();
    queue.applyJobs([job(3), job(1)]);
    queue.applyJobs([job(2)]);
    expect(queue.items.map((i) => i.id)).toEqual([1, 2, 3]);
    queue.applyJobs([job(2, { state: "running" })]);
    expect(queue.get(2)?.state).toBe("running");
    expect(queue.items).toHaveLength(3);
  });

  it("applies progress to running jobs and sums the queue", () => {
    const queue = new QueueModel();
    queue.load([job(1, { state: "running" }), job(2, { state: "done", bytes_sent: 100 }), job(3, { state: "failed" })]);
    queue.applyProgress([{ id: 1, bytes_sent: 40, total: 100, speed: 1000, eta_secs: 0.06 }]);
    queue.applyProgress([{ id: 99, bytes_sent: 1, total: 1, speed: 1, eta_secs: null }]);
    expect(queue.get(1)).toMatchObject({ bytes_sent: 40, speed: 1000, eta_secs: 0.06 });
    expect(queue.summary()).toEqual({
      total: 3,
      done: 1,
      failed: 1,
      active: 1,
      bytesTotal: 300,
      bytesSent: 140,
      speed: 1000,
    });
  });

  it("keeps live progress when a running job's record arrives, resets it when it ends", () => {
    const queue = new QueueModel();
    queue.load([job(1, { state: "running" })]);
    queue.applyProgress([{ id: 1, bytes_sent: 70, total: 100, speed: 5, eta_secs: 6 }]);
    queue.applyJobs([job(1, { state: "running", bytes_sent: 0 })]);
    expect(queue.get(1)?.bytes_sent).toBe(70);
    queue.applyJobs([job(1, { state: "done", bytes_sent: 100 })]);
    expect(queue.get(1)).toMatchObject({ bytes_sent: 100, speed: 0, eta_secs: null });
  });

  it("clears finished jobs", () => {
    const queue = new QueueModel();
    queue.load([job(1, { state: "done" }), job(2), job(3, { state: "cancelled" })]);
    queue.clearFinished();
    expect(queue.items.map((i) => i.id)).toEqual([2]);
    expect(queue.get(2)?.id).toBe(2);
    expect(queue.get(1)).toBeUndefined();
  });

  it("handles a thousand jobs quickly", () => {
    const queue = new QueueModel();
    queue.load(Array.from({ length: 1000 }, (_, i) => job(i + 1)));
    const started = performance.now();
    for (let round = 0; round < 50; round += 1) {
      queue.applyProgress(
        Array.from({ length: 4 }, (_, i) => ({ id: i + 1, bytes_sent: round, total: 100, speed: 1, eta_secs: 1 })),
      );
      queue.summary();
    }
    expect(performance.now() - started).toBeLessThan(200);
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
