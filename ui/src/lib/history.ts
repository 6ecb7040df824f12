/**
 * The History screen's rows: one search at a time, fetched from the core a page at a time as
 * they come into view (the core's search index answers; a million uploads never reach the
 * page). Pure bookkeeping, no I/O: the screen asks `wanted`, fetches, and hands back pages.
 */
import type { HistoryEntry, HistoryKind, HistoryQuery } from "./api";

export type KindFilter = HistoryKind;

export interface HistoryFilter {
  query: string;
  profile: string | null;
  kind: KindFilter;
}

/** Rows fetched per call. */
export const PAGE_SIZE = 200;
/**
 * Pages kept around the view; farther ones are dropped (and fetched again when scrolled back).
 * A screen shows a few dozen rows: a thousand either side is plenty, and every batch of uploads
 * shifts what is kept, so more only costs the page memory while a long batch runs.
 */
export const KEEP_PAGES = 5;

export function isUnfiltered(filter: HistoryFilter): boolean {
  return filter.query.trim() === "" && !filter.profile && filter.kind === "all";
}

/** The core's query for page `page` of `filter`. */
export function pageQuery(filter: HistoryFilter, page: number, pageSize = PAGE_SIZE): HistoryQuery {
  return {
    text: filter.query.trim(),
    profile: filter.profile || null,
    kind: filter.kind,
    offset: page * pageSize,
    limit: pageSize,
  };
}

/**
 * The rows of one search by index, a sparse window of them. A `generation` tells answers to an
 * older question (another search, or rows since shifted by uploads or deletions) from current
 * ones; stale rows stay shown until current ones replace them, so nothing flickers.
 */
export class HistoryRows {
  /** Matches in all, as the newest answer said. */
  total = 0;
  /** An answer for the current search arrived (so `total` is known, not just zero). */
  loaded = false;
  filter: HistoryFilter = { query: "", profile: null, kind: "all" };
  private generation = 0;
  private rows = new Map<number, HistoryEntry>();
  /** Pages answered for the current generation. */
  private current = new Set<number>();
  /** Pages asked for, and in which generation. */
  private pending = new Map<number, number>();
  /** The page the view was last near: what eviction keeps when uploads push rows down. */
  private near = 0;

  constructor(readonly pageSize = PAGE_SIZE) {}

  at(index: number): HistoryEntry | undefined {
    return this.rows.get(index);
  }

  /** A new search: forgets every row. Returns false when it is the search already shown. */
  search(filter: HistoryFilter): boolean {
    if (sameFilter(filter, this.filter)) return false;
    this.filter = { ...filter };
    this.generation += 1;
    this.rows.clear();
    this.current.clear();
    this.pending.clear();
    this.total = 0;
    this.loaded = false;
    return true;
  }

  /** The rows may have changed (uploads, deletions): every page is asked for again. */
  invalidate(): void {
    this.generation += 1;
    this.current.clear();
    this.pending.clear();
  }

  /** Pages to fetch so that rows `[start, end)`, and half a page either side, are current. */
  wanted(start: number, end: number): number[] {
    this.near = Math.floor(start / this.pageSize);
    const last = this.loaded ? Math.max(0, Math.ceil(this.total / this.pageSize) - 1) : 0;
    const from = Math.max(0, Math.floor((start - this.pageSize / 2) / this.pageSize));
    const to = Math.min(last, Math.floor((Math.max(end, start + 1) + this.pageSize / 2) / this.pageSize));
    const pages: number[] = [];
    for (let page = from; page <= to; page++) {
      if (!this.current.has(page) && this.pending.get(page) !== this.generation) pages.push(page);
    }
    return pages;
  }

  /** Notes that `page` is being fetched; the token goes back with its answer. */
  ask(page: number): number {
    this.pending.set(page, this.generation);
    return this.generation;
  }

  /** An answer to `ask(page)`; false (and ignored) when the question is stale. */
  receive(page: number, token: number, entries: readonly HistoryEntry[], total: number): boolean {
    if (token !== this.generation) return false;
    this.pending.delete(page);
    this.current.add(page);
    const first = page * this.pageSize;
    for (let i = 0; i < this.pageSize; i++) {
      const entry = entries[i];
      if (entry) this.rows.set(first + i, entry);
      else this.rows.delete(first + i);
    }
    if (total < this.total) for (const index of [...this.rows.keys()]) if (index >= total) this.rows.delete(index);
    this.total = total;
    this.loaded = true;
    this.near = page;
    this.evict(page);
    return true;
  }

  /** The fetch of `page` failed: it may be asked for again. */
  fail(page: number, token: number): void {
    if (this.pending.get(page) === token) this.pending.delete(page);
  }

  /**
   * New uploads (their ids, oldest first, as the core reports them). An unfiltered search makes
   * room for them on top at once (their rows arrive with the pages asked for again); any search
   * asks its pages again (a filtered one may or may not match them). Ids, not rows: a long batch
   * sends thousands, and only the few on screen are ever read.
   */
  added(ids: readonly number[]): void {
    if (isUnfiltered(this.filter)) {
      const known = new Set<number>();
      for (const entry of this.rows.values()) known.add(entry.id);
      const fresh = ids.filter((id) => !known.has(id)).length;
      if (fresh > 0) {
        const shifted = new Map<number, HistoryEntry>();
        for (const [index, entry] of this.rows) shifted.set(index + fresh, entry);
        this.rows = shifted;
        this.total += fresh;
        // Hours of uploads with the screen closed must not pile up here: only the pages
        // around the view stay (the rest are asked for when scrolled to).
        this.evict(this.near);
      }
    }
    this.invalidate();
  }

  /** Deleted uploads leave at once (later rows move up); the pages are asked for again. */
  removed(ids: readonly number[]): void {
    const gone = new Set(ids);
    const kept = [...this.rows].sort((a, b) => a[0] - b[0]);
    const next = new Map<number, HistoryEntry>();
    let shift = 0;
    for (const [index, entry] of kept) {
      if (gone.has(entry.id)) shift += 1;
      else next.set(index - shift, entry);
    }
    this.rows = next;
    this.total = Math.max(0, this.total - shift);
    this.invalidate();
  }

  /** Keeps the rows of the `KEEP_PAGES` pages nearest the one that just arrived. */
  private evict(near: number): void {
    const keep = KEEP_PAGES * this.pageSize;
    if (this.rows.size <= keep) return;
    const center = near * this.pageSize;
    for (const index of [...this.rows.keys()]) {
      if (Math.abs(index - center) > keep / 2) {
        this.rows.delete(index);
        this.current.delete(Math.floor(index / this.pageSize));
      }
    }
  }
}

function sameFilter(a: HistoryFilter, b: HistoryFilter): boolean {
  return a.query.trim() === b.query.trim() && (a.profile || null) === (b.profile || null) && a.kind === b.kind;
}
