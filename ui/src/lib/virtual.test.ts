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
