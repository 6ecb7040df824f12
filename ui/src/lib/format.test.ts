import { describe, expect, it } from "vitest";

import { formatBytes, formatEta, formatSpeed, fraction } from "./format";

describe("format", () => {
  it("formats bytes", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(50 * 1024 * 1024)).toBe("50 MB");
    expect(formatBytes(-1)).toBe("–");
  });

  it("formats speed and ETA, empty when unknown", () => {
    expect(formatSpeed(2 * 1024 * 1024)).toBe("2.0 MB/s");
    expect(formatSpeed(0)).toBe("");
    expect(formatEta(null)).toBe("");
    expect(formatEta(4.2)).toBe("5 s");
    expect(formatEta(180)).toBe("3 min");
    expect(formatEta(3900)).toBe("1 h 5 min");
  });

  it("clamps fractions", () => {
    expect(fraction(5, 10)).toBe(0.5);
    expect(fraction(5, 0)).toBe(0);
    expect(fraction(20, 10)).toBe(1);
  });
});
