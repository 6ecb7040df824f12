/**
 * The upload queue as the window holds it: the counts by state, and one window of rows around
 * the scroll position, read from the core in pages. A drop of a million files costs the window
 * what a drop of ten does. Plain data and methods (no Svelte), so the hot path is cheap and
 * testable; the screen bumps one reactive counter per batch (at most ten a second).
 */
import type { JobView, ProgressView, QueueCountsView, QueuePage } from "./api";

/** Rows read at once: a few screens' worth, so scrolling rarely waits. */
export const PAGE = 200;

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
  /** Ended in any way: what "Clear finished" clears. */
  finished: number;
  bytesTotal: number;
  bytesSent: number;
  /** Sum of the running jobs' speeds. */
  speed: number;
}

export const EMPTY_COUNTS: QueueCountsView = {
  total: 0,
  queued: 0,
  running: 0,
  paused: 0,
  done: 0,
  failed: 0,
  cancelled: 0,
  finished: 0,
  bytes_total: 0,
  bytes_done: 0,
};

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

interface Live {
  bytes_sent: number;
  speed: number;
  eta_secs: number | null;
}

export class QueueModel {
  counts: QueueCountsView = EMPTY_COUNTS;
  /** Queue position of `rows[0]`. */
  private offset = 0;
  private rows: QueueItem[] = [];
  private index = new Map<number, number>();
  /** Progress of the running jobs, wherever they are in the queue (for the summary). */
  private live = new Map<number, Live>();

  get total(): number {
    return this.counts.total;
  }

  /** The row at queue position `i`, when it is loaded. */
  at(i: number): QueueItem | undefined {
    const k = i - this.offset;
    return k >= 0 && k < this.rows.length ? this.rows[k] : undefined;
  }

  get(id: number): QueueItem | undefined {
    const at = this.index.get(id);
    return at === undefined ? undefined : this.rows[at];
  }

  /**
   * The page to read so that positions `start..end` are loaded (`force`: even if they are,
   * because rows changed), or null when nothing needs reading.
   */
  wanted(start: number, end: number, force = false): { offset: number; limit: number } | null {
    const last = Math.min(end, this.total);
    const loaded = start >= this.offset && last <= this.offset + this.rows.length;
    if (loaded && !force) return null;
    const middle = Math.floor((start + last) / 2);
    const offset = Math.max(0, Math.min(middle - PAGE / 2, this.total - PAGE));
    return { offset, limit: PAGE };
  }

  /** Counts and job changes received so far: tells a page read from newer news. */
  epoch = 0;

  /**
   * A page read from the core replaces the window. Its counts replace the model's only if no
   * newer counts arrived while it was read (`epoch`, as it was when the read began): an older
   * answer must not shrink the queue back.
   */
  loadPage(page: QueuePage, epoch = this.epoch): void {
    if (epoch === this.epoch) this.counts = page.counts;
    this.offset = page.offset;
    this.rows = page.jobs.map((job) => this.item(job));
    this.index.clear();
    this.rows.forEach((row, i) => this.index.set(row.id, i));
    if (page.counts.running === 0) this.live.clear();
  }

  setCounts(counts: QueueCountsView): void {
    this.epoch += 1;
    this.counts = counts;
    if (counts.running === 0) this.live.clear();
  }

  /** Changed jobs: the loaded ones are updated; the others are in no row shown. */
  applyJobs(jobs: readonly JobView[]): void {
    if (jobs.length > 0) this.epoch += 1;
    for (const job of jobs) {
      if (job.state !== "running") this.live.delete(job.id);
      const at = this.index.get(job.id);
      if (at !== undefined) this.rows[at] = this.item(job, this.rows[at]);
    }
  }

  applyProgress(updates: readonly ProgressView[]): void {
    for (const update of updates) {
      const live = { bytes_sent: update.bytes_sent, speed: update.speed, eta_secs: update.eta_secs ?? null };
      const at = this.index.get(update.id);
      if (at !== undefined) {
        const item = this.rows[at];
        if (isFinished(item.state)) continue;
        Object.assign(item, live);
      }
      this.live.set(update.id, live);
    }
  }

  summary(): QueueSummary {
    const c = this.counts;
    let speed = 0;
    let sending = 0;
    for (const live of this.live.values()) {
      speed += live.speed;
      sending += live.bytes_sent;
    }
    return {
      total: c.total,
      done: c.done,
      failed: c.failed,
      active: c.queued + c.running + c.paused,
      finished: c.finished,
      bytesTotal: c.bytes_total,
      bytesSent: Math.min(c.bytes_total, c.bytes_done + sending),
      speed,
    };
  }

  private item(job: JobView, old?: QueueItem): QueueItem {
    if (job.state !== "running") return { ...job, speed: 0, eta_secs: null };
    // A running job's live progress is fresher than the stored acknowledgement.
    const live = this.live.get(job.id);
    return {
      ...job,
      bytes_sent: Math.max(job.bytes_sent, live?.bytes_sent ?? old?.bytes_sent ?? 0),
      speed: live?.speed ?? old?.speed ?? 0,
      eta_secs: live?.eta_secs ?? old?.eta_secs ?? null,
    };
  }
}

/** What a screen reader says about the queue: counts only (bytes and speed change too often
 * to be spoken), and nothing for an empty queue. */
export function spokenSummary(s: QueueSummary): string {
  if (s.total === 0) return "";
  const n = (value: number) => value.toLocaleString("en");
  const parts = [`${n(s.done)} of ${n(s.total)} uploaded`];
  if (s.failed > 0) parts.push(`${n(s.failed)} failed`);
  if (s.active > 0) parts.push(`${n(s.active)} to go`);
  return parts.join(", ");
}

/** How long a spoken summary stays before the next one replaces it, while uploads run. */
export const SPOKEN_GAP_MS = 5000;
