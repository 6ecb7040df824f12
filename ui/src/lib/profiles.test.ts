import { describe, expect, it } from "vitest";

import type { Api, ProfileView } from "./api";
import { loadProfiles, sortProfiles } from "./profiles";

function profile(name: string, overrides: Partial<ProfileView> = {}): ProfileView {
  return {
    name,
    provider: "imagekit",
    auth: "v2",
    destination: "https://ik.imagekit.io/demo",
    folder: null,
    tags: [],
    secret: "missing",
    metadata: "strip-location",
    on_duplicate: "skip",
    secret_problem: null,
    is_default: false,
    ...overrides,
  };
}

const names = (profiles: ProfileView[]) => profiles.map((p) => p.name);

describe("sortProfiles", () => {
  it("puts the default first, then sorts by name", () => {
    const input = [profile("ik"), profile("sandbox", { is_default: true }), profile("cl")];
    expect(names(sortProfiles(input))).toEqual(["sandbox", "cl", "ik"]);
  });

  it("sorts names case-insensitively and numbers by value", () => {
    const input = [profile("Work10"), profile("b"), profile("work2"), profile("A")];
    expect(names(sortProfiles(input))).toEqual(["A", "b", "work2", "Work10"]);
  });

  it("does not modify its input", () => {
    const input = [profile("b"), profile("a")];
    sortProfiles(input);
    expect(names(input)).toEqual(["b", "a"]);
  });
});

function fakeApi(listProfiles: Api["listProfiles"]): Api {
  return { listProfiles } as Partial<Api> as Api;
}

describe("loadProfiles", () => {
  it("returns the sorted profiles", async () => {
    const api = fakeApi(async () => ({
      status: "ok",
      data: [profile("b"), profile("a", { is_default: true })],
    }));
    const state = await loadProfiles(api);
    expect(state.status).toBe("ready");
    expect(state.status === "ready" && names(state.profiles)).toEqual(["a", "b"]);
  });

  it("returns an empty list as ready, not as an error", async () => {
    const state = await loadProfiles(fakeApi(async () => ({ status: "ok", data: [] })));
    expect(state).toEqual({ status: "ready", profiles: [] });
  });

  it("passes the backend's error through", async () => {
    const error = { kind: "config" as const, message: "config.toml: unknown provider `s3`" };
    const state = await loadProfiles(fakeApi(async () => ({ status: "error", error })));
    expect(state).toEqual({ status: "error", error });
  });

  it("turns a rejection into an error state", async () => {
    const state = await loadProfiles(
      fakeApi(() => Promise.reject(new Error("boom"))),
    );
    expect(state).toEqual({ status: "error", error: { kind: "ipc", message: "boom" } });
  });
});
