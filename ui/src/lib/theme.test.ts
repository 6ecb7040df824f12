import { describe, expect, it } from "vitest";

import { loadChoice, parseChoice, resolveTheme } from "./theme";

describe("theme", () => {
  it("follows the system unless light or dark was chosen", () => {
    expect(resolveTheme("system", true)).toBe("dark");
    expect(resolveTheme("system", false)).toBe("light");
    expect(resolveTheme("light", true)).toBe("light");
    expect(resolveTheme("dark", false)).toBe("dark");
  });

  it("reads anything but light or dark as the system's choice", () => {
    expect(parseChoice("dark")).toBe("dark");
    expect(parseChoice("light")).toBe("light");
    expect(parseChoice("Dark")).toBe("system");
    expect(parseChoice(null)).toBe("system");
    expect(parseChoice(undefined)).toBe("system");
  });

  it("falls back to the system when storage is missing or throws", () => {
    expect(loadChoice(undefined)).toBe("system");
    expect(loadChoice({ getItem: () => "dark" })).toBe("dark");
    expect(
      loadChoice({
        getItem: () => {
          throw new Error("locked");
        },
      }),
    ).toBe("system");
  });
});
