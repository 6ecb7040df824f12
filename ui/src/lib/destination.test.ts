import { describe, expect, it } from "vitest";

import { draftFor, draftProblem, parseTags, toDestination } from "./destination";

describe("destination", () => {
  it("prefills from the profile's defaults", () => {
    expect(draftFor({ name: "sandbox", folder: "/uploads/chat", tags: ["chat", "media"] })).toEqual({
      profile: "sandbox",
      folder: "/uploads/chat",
      tags: "chat, media",
      keepStructure: false,
    });
    expect(draftFor(undefined).profile).toBe("");
  });

  it("parses tags and sends what is shown", () => {
    expect(parseTags(" a, b ,,a ")).toEqual(["a", "b"]);
    expect(toDestination({ profile: "ik", folder: " /x ", tags: "", keepStructure: true })).toEqual({
      profile: "ik",
      folder: "/x",
      tags: [],
    });
  });

  it("flags what the backend would refuse", () => {
    expect(draftProblem({ profile: "", folder: "", tags: "", keepStructure: false })).toMatch(/profile/);
    expect(draftProblem({ profile: "p", folder: "/a/../b", tags: "", keepStructure: false })).toMatch(/\.\./);
    expect(draftProblem({ profile: "p", folder: "/a", tags: "x", keepStructure: false })).toBeNull();
  });
});
