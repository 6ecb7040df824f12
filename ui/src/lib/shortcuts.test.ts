import { describe, expect, it } from "vitest";

import { acceleratorOf, keyName } from "./shortcuts";

const press = (code: string, mods: Partial<Record<"ctrlKey" | "altKey" | "shiftKey" | "metaKey", boolean>> = {}) => ({
  code,
  ctrlKey: false,
  altKey: false,
  shiftKey: false,
  metaKey: false,
  ...mods,
});

describe("shortcut capture", () => {
  it("names the pressed keys in the backend's accelerator form, modifiers first", () => {
    expect(acceleratorOf(press("KeyU", { ctrlKey: true, altKey: true }))).toBe("Ctrl+Alt+U");
    expect(acceleratorOf(press("Digit7", { shiftKey: true, metaKey: true }))).toBe("Shift+Super+7");
    expect(acceleratorOf(press("F9"))).toBe("F9");
    expect(acceleratorOf(press("ArrowUp", { ctrlKey: true }))).toBe("Ctrl+Up");
  });

  it("waits while only modifiers are held, and ignores keys it cannot name", () => {
    expect(acceleratorOf(press("ControlLeft", { ctrlKey: true }))).toBeNull();
    expect(acceleratorOf(press("AltRight", { altKey: true, ctrlKey: true }))).toBeNull();
    expect(keyName(press("MediaPlayPause"))).toBeNull();
    expect(keyName(press("F25"))).toBeNull();
  });
});
