import { describe, expect, it } from "vitest";

import type { HistoryEntry } from "./api";
import { filterHistory, mergeHistory } from "./history";

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
    source: "app",
    ...overrides,
  };
}

const all = { query: "", profile: null, kind: "all" as const };

describe("filterHistory", () => {
  const entries = [
    entry(1),
    entry(2, { name: "report.pdf", is_image: false, tags: ["kyc"], profile: "cl" }),
    entry(3, { private: true }),
  ];

  it("matches every word anywhere (name, folder, tags, url)", () => {
    expect(filterHistory(entries, { ...all, query: "PHOTO 3" }).map((e) => e.id)).toEqual([3]);
    expect(filterHistory(entries, { ...all, query: "kyc" }).map((e) => e.id)).toEqual([2]);
    expect(filterHistory(entries, all)).toHaveLength(3);
  });

  it("filters by profile and kind", () => {
    expect(filterHistory(entries, { ...all, profile: "cl" }).map((e) => e.id)).toEqual([2]);
    expect(filterHistory(entries, { ...all, kind: "images" }).map((e) => e.id)).toEqual([1, 3]);
    expect(filterHistory(entries, { ...all, kind: "other" }).map((e) => e.id)).toEqual([2]);
    expect(filterHistory(entries, { ...all, kind: "private" }).map((e) => e.id)).toEqual([3]);
  });

  it("searches 10,000 entries fast", () => {
    const many = Array.from({ length: 10_000 }, (_, i) => entry(i + 1));
    filterHistory(many, { ...all, query: "x" });
    const started = performance.now();
    const found = filterHistory(many, { ...all, query: "photo-9999" });
    expect(found.map((e) => e.id)).toEqual([9999]);
    expect(performance.now() - started).toBeLessThan(50);
  });
});

describe("mergeHistory", () => {
  it("puts new uploads first and removes deleted ones", () => {
    const merged = mergeHistory([entry(2), entry(1)], [entry(3), entry(4)], [1]);
    expect(merged.map((e) => e.id)).toEqual([4, 3, 2]);
    expect(mergeHistory(merged, [entry(4)]).map((e) => e.id)).toEqual([4, 3, 2]);
  });
});
