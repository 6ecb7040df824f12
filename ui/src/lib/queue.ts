/**
 * The upload queue as the window holds it: jobs by id in queue order, with live progress.
 * Plain data and methods (no Svelte), so the hot path is cheap and testable; the screen bumps
 * one reactive counter per batch (at most ten a second) and re-renders only the visible rows.
 */
import type { JobView, ProgressView } from "./api";

export interface QueueItem extends JobView {
  /** Bytes per second while running. */
  speed: number;
  eta_secs: number | null;
}

export interface QueueSummary {
  total: number;
  done: number;
  failed: number;
  active: number;
  bytesTotal: number;
  bytesSent: number;
  /** Sum of the running jobs' speeds. */
  speed: number;
}

const FINISHED = new Set(["done", "failed", "needs_attention", "cancelled", "deleted"]);

export function isFinished(state: JobView["state"]): boolean {
  return FINISHED.has(state);
}

export function canCancel(state: JobView["state"]): boolean {
  return state === "queued" || state === "running" || state === "paused";
}

export function canRetry(state: JobView["state"]): boolean {
  return state === "failed" || state === "needs_attention" || state === "cancelled" || state === "paused";
}

export class QueueModel {
  items: QueueItem[] = [];
  private index = new Map<number, number>();

  /** Replaces everything (first load, or a resync). */
  load(jobs: readonly JobView[]): void {
    this.items = [];
    this.index.clear();
    this.applyJobs(jobs);
  }

  /** New or changed jobs; new ones keep id order at the end. */
  applyJobs(jobs: readonly JobView[]): void {
    let appended = false;
    for (const job of jobs) {
      const at = this.index.get(job.id);
      if (at === undefined) {
        this.index.set(job.id, this.items.length);
        this.items.push({ ...job, speed: 0, eta_secs: null });
        appended = true;
      } else {
        const old = this.items[at];
        const running = job.state === "running";
        this.items[at] = {
          ...job,
          // A running job's live progress is fresher than the stored acknowledgement.
          bytes_sent: running ? Math.max(job.bytes_sent, old.bytes_sent) : job.bytes_sent,
          speed: running ? old.speed : 0,
          eta_secs: running ? old.eta_secs : null,
        };
      }
    }
    if (appended && !this.sorted()) this.reindex(true);
  }

  applyProgress(updates: readonly ProgressView[]): void {
    for (const update of updates) {
      const at = this.index.get(update.id);
      if (at === undefined) continue;
      const item = this.items[at];
      if (isFinished(item.state)) continue;
      item.bytes_sent = update.bytes_sent;
      item.speed = update.speed;
      item.eta_secs = update.eta_secs ?? null;
    }
  }

  /** Drops finished jobs (the backend forgets them too). */
  clearFinished(): void {
    this.items = this.items.filter((item) => !isFinished(item.state));
    this.reindex(false);
  }

  get(id: number): QueueItem | undefined {
    const at = this.index.get(id);
    return at === undefined ? undefined : this.items[at];
  }

  summary(): QueueSummary {
    const summary: QueueSummary = {
      total: this.items.length,
      done: 0,
      failed: 0,
      active: 0,
      bytesTotal: 0,
      bytesSent: 0,
      speed: 0,
    };
    for (const item of this.items) {
      if (item.state === "cancelled") continue;
      summary.bytesTotal += item.size;
      if (item.state === "done") {
        summary.done += 1;
        summary.bytesSent += item.size;
      } else if (item.state === "failed" || item.state === "needs_attention") {
        summary.failed += 1;
      } else {
        summary.active += 1;
        summary.bytesSent += Math.min(item.bytes_sent, item.size);
        if (item.state === "running") summary.speed += item.speed;
      }
    }
    return summary;
  }

  private sorted(): boolean {
    for (let i = 1; i < this.items.length; i += 1) {
      if (this.items[i - 1].id > this.items[i].id) return false;
    }
    return true;
  }

  private reindex(sort: boolean): void {
    if (sort) this.items.sort((a, b) => a.id - b.id);
    this.index.clear();
    this.items.forEach((item, i) => this.index.set(item.id, i));
  }
}
