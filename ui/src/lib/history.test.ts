import { describe, expect, it } from "vitest";

import type { HistoryEntry } from "./api";
import { HistoryRows, KEEP_PAGES, isUnfiltered, pageQuery } from "./history";

function entry(id: number, overrides: Partial<HistoryEntry> = {}): HistoryEntry {
  return {
    id,
    name: `photo-${id}.jpg`,
    path: `/home/me/photo-${id}.jpg`,
    profile: "sandbox",
    provider: "imagekit",
    size: 1000,
    finished_at: 1_700_000_000 + id,
    url: `https://ik.imagekit.io/acme/uploads/photo-${id}.jpg`,
    remote_id: `file_${id}`,
    folder: "/uploads",
    tags: ["chat"],
    is_image: true,
    private: false,
    url_endpoint: "https://ik.imagekit.io/acme",
    source: { kind: "app" },
    metadata: null,
    duplicate_of: null,
    ...overrides,
  };
}

const all = { query: "", profile: null, kind: "all" as const };

/** Page `page` of ids `total..1` (newest first), as the core would answer. */
function answer(rows: HistoryRows, page: number, total: number, removed: number[] = []): HistoryEntry[] {
  const ids = Array.from({ length: total }, (_, i) => total - i).filter((id) => !removed.includes(id));
  return ids.slice(page * rows.pageSize, (page + 1) * rows.pageSize).map((id) => entry(id));
}

function ids(rows: HistoryRows, from: number, to: number): (number | undefined)[] {
  return Array.from({ length: to - from }, (_, i) => rows.at(from + i)?.id);
}

describe("pageQuery", () => {
  it("asks the core for one page of the search", () => {
    expect(pageQuery({ query: "  sun set ", profile: "", kind: "images" }, 3, 200)).toEqual({
      text: "sun set",
      profile: null,
      kind: "images",
      offset: 600,
      limit: 200,
    });
    expect(isUnfiltered(all)).toBe(true);
    expect(isUnfiltered({ ...all, query: " " })).toBe(true);
    expect(isUnfiltered({ ...all, kind: "private" })).toBe(false);
  });
});

describe("HistoryRows", () => {
  it("fetches the first page, then the pages around the view as it scrolls", () => {
    const rows = new HistoryRows(10);
    expect(rows.wanted(0, 12)).toEqual([0]);
    const token = rows.ask(0);
    expect(rows.wanted(0, 12)).toEqual([]);
    expect(rows.receive(0, token, answer(rows, 0, 95), 95)).toBe(true);
    expect(rows.total).toBe(95);
    expect(ids(rows, 0, 3)).toEqual([95, 94, 93]);
    // Rows 0..12 plus half a page: pages 0 and 1; page 0 is here.
    expect(rows.wanted(0, 12)).toEqual([1]);
    // Scrolled to the end: only what exists.
    expect(rows.wanted(88, 95)).toEqual([8, 9]);
    const last = rows.ask(9);
    rows.receive(9, last, answer(rows, 9, 95), 95);
    expect(ids(rows, 90, 96)).toEqual([5, 4, 3, 2, 1, undefined]);
    expect(rows.at(50)).toBeUndefined();
  });

  it("ignores answers to an older search and starts over on a new one", () => {
    const rows = new HistoryRows(10);
    const stale = rows.ask(0);
    expect(rows.search({ ...all, query: "sun" })).toBe(true);
    expect(rows.search({ ...all, query: " sun " })).toBe(false);
    expect(rows.receive(0, stale, answer(rows, 0, 50), 50)).toBe(false);
    expect(rows.loaded).toBe(false);
    expect(rows.wanted(0, 5)).toEqual([0]);
    const token = rows.ask(0);
    rows.receive(0, token, [entry(7)], 1);
    expect(ids(rows, 0, 2)).toEqual([7, undefined]);
  });

  it("makes room for new uploads on top at once when nothing filters, then asks again", () => {
    const rows = new HistoryRows(10);
    rows.receive(0, rows.ask(0), answer(rows, 0, 20), 20);
    rows.added([21, 22]);
    expect(rows.total).toBe(22);
    expect(ids(rows, 0, 4)).toEqual([undefined, undefined, 20, 19]);
    // The shifted pages are stale: asked for again (rows stay shown meanwhile).
    expect(rows.wanted(0, 5)).toEqual([0, 1]);
    rows.receive(0, rows.ask(0), answer(rows, 0, 22), 22);
    expect(ids(rows, 0, 3)).toEqual([22, 21, 20]);
    // An upload the page already shows is not counted twice.
    rows.added([22]);
    expect(rows.total).toBe(22);
    expect(ids(rows, 0, 3)).toEqual([22, 21, 20]);
  });

  it("does not guess for a filtered search, it asks again", () => {
    const rows = new HistoryRows(10);
    rows.search({ ...all, kind: "images" });
    rows.receive(0, rows.ask(0), answer(rows, 0, 5), 5);
    rows.added([6]);
    expect(rows.total).toBe(5);
    expect(rows.wanted(0, 5)).toEqual([0]);
  });

  it("drops deleted uploads at once, later rows moving up", () => {
    const rows = new HistoryRows(10);
    rows.receive(0, rows.ask(0), answer(rows, 0, 20), 20);
    rows.removed([19, 17]);
    expect(rows.total).toBe(18);
    expect(ids(rows, 0, 4)).toEqual([20, 18, 16, 15]);
    const token = rows.ask(0);
    rows.receive(0, token, answer(rows, 0, 20, [19, 17]), 18);
    expect(ids(rows, 0, 4)).toEqual([20, 18, 16, 15]);
  });

  it("keeps a bounded window of a million rows", () => {
    const rows = new HistoryRows(200);
    const page = (n: number) => Array.from({ length: 200 }, (_, i) => entry(n * 200 + i));
    for (let n = 0; n < 100; n++) rows.receive(n, rows.ask(n), page(n), 1_000_000);
    // Far pages were dropped, and are fetched again when scrolled back to.
    expect(rows.at(0)).toBeUndefined();
    expect(rows.wanted(0, 10)).toEqual([0]);
    expect(rows.at(99 * 200)?.id).toBe(99 * 200);
    expect(ids(rows, 0, 1e6).filter((id) => id !== undefined).length).toBeLessThanOrEqual(KEEP_PAGES * 200 + 200);
  });

  it("keeps a bounded window while uploads arrive for hours with the screen closed", () => {
    const rows = new HistoryRows(200);
    rows.receive(0, rows.ask(0), answer(rows, 0, 200), 200);
    let next = 201;
    for (let batch = 0; batch < 500; batch++) {
      rows.added(Array.from({ length: 200 }, () => next++));
    }
    expect(rows.total).toBe(100_200);
    // Room for the newest on top (read when shown); what was pushed far down was let go.
    expect(rows.at(0)).toBeUndefined();
    expect(rows.wanted(0, 10)).toEqual([0]);
    expect(ids(rows, 0, 200_000).filter((id) => id !== undefined).length).toBeLessThanOrEqual(KEEP_PAGES * 200 + 200);
  });

  it("lets a failed page be asked again", () => {
    const rows = new HistoryRows(10);
    const token = rows.ask(0);
    rows.fail(0, token);
    expect(rows.wanted(0, 5)).toEqual([0]);
  });
});
