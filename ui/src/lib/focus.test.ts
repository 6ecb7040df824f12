import { describe, expect, it } from "vitest";

import { canTakeFocus } from "./focus";

describe("canTakeFocus", () => {
  const el = (isConnected: boolean, disabled?: boolean) => ({ isConnected, disabled }) as unknown as HTMLElement;
  it("takes an element still on the page and not disabled", () => {
    expect(canTakeFocus(el(true))).toBe(true);
    expect(canTakeFocus(el(true, false))).toBe(true);
  });
  it("refuses one removed from the page, a disabled control, or none", () => {
    expect(canTakeFocus(el(false))).toBe(false);
    expect(canTakeFocus(el(true, true))).toBe(false);
    expect(canTakeFocus(null)).toBe(false);
    expect(canTakeFocus(undefined)).toBe(false);
  });
});
