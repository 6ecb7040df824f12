import { describe, expect, it } from "vitest";

import type { WatchView } from "./api";
import { allPaused, countsLine, emptyWatchForm, formFromWatch, inputFromWatchForm, watchFormProblem } from "./watches";

const watch = (over: Partial<WatchView> = {}): WatchView => ({
  key: "sandbox:/home/me/Photos",
  path: "/home/me/Photos",
  name: "Photos",
  profile: "sandbox",
  state: "watching",
  detail: null,
  folder: "/inbox",
  tags: ["a", "b"],
  recursive: false,
  uploaded_today: 3,
  waiting: 0,
  failed: 0,
  recent: [],
  ...over,
});

describe("watch form", () => {
  it("round-trips a watch's settings and sends empty fields as the profile's", () => {
    const form = formFromWatch(watch());
    expect(form).toEqual({ profile: "sandbox", folder: "/inbox", tags: "a, b", recursive: false });
    expect(inputFromWatchForm(form, "/home/me/Photos")).toEqual({
      path: "/home/me/Photos",
      profile: "sandbox",
      folder: "/inbox",
      tags: ["a", "b"],
      recursive: false,
    });
    const cleared = { ...form, folder: "  ", tags: "" };
    expect(inputFromWatchForm(cleared, "/p")).toMatchObject({ folder: null, tags: null });
    expect(formFromWatch(watch({ folder: null, tags: null, recursive: true }))).toEqual(emptyWatchForm("sandbox"));
  });

  it("asks for a profile, and leaves the rest to the config's checks", () => {
    expect(watchFormProblem(emptyWatchForm(""))).toMatch(/profile/);
    expect(watchFormProblem({ ...emptyWatchForm("ik"), folder: "uploads" })).toBeNull();
  });
});

describe("counts", () => {
  it("always says what was uploaded today, and the rest only when there is some", () => {
    expect(countsLine(watch())).toBe("3 uploaded today");
    expect(countsLine(watch({ waiting: 2, failed: 1, uploaded_today: 0 }))).toBe("0 uploaded today · 2 waiting · 1 failed");
  });

  it("is all paused only with watches, every one paused", () => {
    expect(allPaused([])).toBe(false);
    expect(allPaused([watch({ state: "paused" }), watch({ state: "offline" })])).toBe(false);
    expect(allPaused([watch({ state: "paused" })])).toBe(true);
  });
});
