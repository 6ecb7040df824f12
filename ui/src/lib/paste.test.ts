import { describe, expect, it } from "vitest";

import { pathsFromText, pasteTargetsQueue } from "./paste";

describe("pathsFromText", () => {
  it("reads file URIs and absolute paths, one per line", () => {
    const text = "copy\nfile:///home/me/a%20b.png\r\n/tmp/c.jpg\nC:\\Users\\me\\d.pdf\nrelative.txt\n# note\nhttps://x/y";
    expect(pathsFromText(text)).toEqual(["/home/me/a b.png", "/tmp/c.jpg", "C:\\Users\\me\\d.pdf"]);
  });

  it("ignores remote file URIs, duplicates and plain text", () => {
    expect(pathsFromText("file://server/share/a.png\n/tmp/a\n/tmp/a")).toEqual(["/tmp/a"]);
    expect(pathsFromText("hello world")).toEqual([]);
  });
});

describe("pasteTargetsQueue", () => {
  it("leaves pastes into text fields alone", () => {
    const field = { closest: (s: string) => (s.includes("input") ? {} : null) } as unknown as Element;
    const body = { closest: () => null } as unknown as Element;
    expect(pasteTargetsQueue(field)).toBe(false);
    expect(pasteTargetsQueue(body)).toBe(true);
    expect(pasteTargetsQueue(null)).toBe(true);
  });
});
