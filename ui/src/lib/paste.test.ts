import { describe, expect, it } from "vitest";

import { pasteTargetsQueue } from "./paste";

describe("pasteTargetsQueue", () => {
  it("leaves pastes into text fields alone", () => {
    const field = { closest: (s: string) => (s.includes("input") ? {} : null) } as unknown as Element;
    const body = { closest: () => null } as unknown as Element;
    expect(pasteTargetsQueue(field)).toBe(false);
    expect(pasteTargetsQueue(body)).toBe(true);
    expect(pasteTargetsQueue(null)).toBe(true);
  });
});
