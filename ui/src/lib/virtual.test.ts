import { describe, expect, it } from "vitest";

import { visibleRange } from "./virtual";

describe("visibleRange", () => {
  it("renders the visible rows plus overscan", () => {
    expect(visibleRange(0, 400, 40, 1000, 2)).toEqual({ start: 0, end: 13, offset: 0, height: 40_000 });
    expect(visibleRange(4000, 400, 40, 1000, 2)).toEqual({ start: 98, end: 113, offset: 3920, height: 40_000 });
  });

  it("clamps at the end and handles empty lists", () => {
    expect(visibleRange(1e9, 400, 40, 1000, 2)).toMatchObject({ end: 1000 });
    expect(visibleRange(0, 400, 40, 0)).toEqual({ start: 0, end: 0, offset: 0, height: 0 });
  });
});

describe("visibleRange over more rows than a page can be tall", () => {
  it("maps the scrollbar proportionally and keeps the first row at the top", () => {
    const rows = 1_000_000;
    const top = visibleRange(0, 640, 64, rows, 2, 8_000_000);
    expect(top).toEqual({ start: 0, end: 13, offset: 0, height: 8_000_000 });
    const end = visibleRange(8_000_000 - 640, 640, 64, rows, 2, 8_000_000);
    expect(end.end).toBe(rows);
    // The last row's bottom meets the viewport's bottom.
    expect(end.offset + (rows - end.start) * 64).toBeCloseTo(8_000_000, 3);
    const middle = visibleRange(4_000_000, 640, 64, rows, 0, 8_000_000);
    expect(middle.start).toBeGreaterThan(rows / 2 - 100);
    expect(middle.start).toBeLessThan(rows / 2 + 100);
    // The first rendered row starts at or just above the view's top.
    expect(middle.offset).toBeLessThanOrEqual(4_000_000);
    expect(middle.offset).toBeGreaterThan(4_000_000 - 64);
  });
});
