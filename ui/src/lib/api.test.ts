import { afterEach, describe, expect, it, vi } from "vitest";

import { createTauriApi, guard, NO_BACKEND, toAppError } from "./api";

describe("toAppError", () => {
  it("keeps the backend's { kind, message }", () => {
    expect(toAppError({ kind: "config", message: "bad toml" })).toEqual({
      kind: "config",
      message: "bad toml",
    });
  });

  it("shows a kind it does not know (a newer backend) as an IPC error, keeping the message", () => {
    expect(toAppError({ kind: "quota", message: "over the plan" })).toEqual({ kind: "ipc", message: "over the plan" });
  });

  it("wraps Tauri's plain-string rejections and thrown errors", () => {
    expect(toAppError("command list_profiles not found")).toEqual({
      kind: "ipc",
      message: "command list_profiles not found",
    });
    expect(toAppError(new TypeError("x is undefined"))).toEqual({
      kind: "ipc",
      message: "x is undefined",
    });
  });

  it("always has a message", () => {
    for (const value of [undefined, null, 42, "", {}]) {
      expect(toAppError(value).message).not.toBe("");
    }
  });
});

describe("guard", () => {
  it("passes ok results through", async () => {
    expect(await guard(async () => ({ status: "ok", data: 1 }))).toEqual({ status: "ok", data: 1 });
  });

  it("never rejects", async () => {
    const result = await guard(() => Promise.reject(new Error("down")));
    expect(result).toEqual({ status: "error", error: { kind: "ipc", message: "down" } });
  });
});

describe("createTauriApi", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("reports a missing backend instead of throwing outside Tauri", async () => {
    const result = await createTauriApi(() => false).listProfiles();
    expect(result.status === "error" && result.error.kind).toBe(NO_BACKEND);
  });

  it("calls the list_profiles command through the generated bindings", async () => {
    const invoke = vi.fn(async () => []);
    vi.stubGlobal("window", { __TAURI_INTERNALS__: { invoke } });
    const result = await createTauriApi(() => true).listProfiles();
    expect(result).toEqual({ status: "ok", data: [] });
    expect(invoke).toHaveBeenCalledWith("list_profiles", {}, undefined);
  });

  it("maps a backend rejection to an AppError", async () => {
    vi.stubGlobal("window", {
      __TAURI_INTERNALS__: { invoke: () => Promise.reject({ kind: "config", message: "bad toml" }) },
    });
    const result = await createTauriApi(() => true).listProfiles();
    expect(result).toEqual({ status: "error", error: { kind: "config", message: "bad toml" } });
  });

  it("pulls events until a newer page takes over, and hands each non-empty batch to the handler once", async () => {
    const notice = { type: "notice", message: "hello", error: false };
    const answers: Array<() => Promise<unknown>> = [
      async () => [notice],
      async () => [],
      () => Promise.reject({ kind: "superseded", message: "another window took over the event stream" }),
    ];
    // Fake timers: a loop that went on after "superseded" would pull again after its 1 s pause.
    vi.useFakeTimers({ toFake: ["setTimeout"] });
    let pulls = 0;
    let done!: () => void;
    const stopped = new Promise<void>((resolve) => (done = resolve));
    const invoke = vi.fn(async (cmd: string, args?: Record<string, unknown>) => {
      if (cmd === "subscribe") return 7;
      expect(cmd).toBe("next_events");
      expect(args).toEqual({ subscriber: 7 });
      const answer = answers[pulls++];
      if (pulls === answers.length) queueMicrotask(done);
      return answer();
    });
    vi.stubGlobal("window", { __TAURI_INTERNALS__: { invoke } });
    const batches: unknown[] = [];
    const subscribed = await createTauriApi(() => true).subscribe((events) => batches.push(events));
    expect(subscribed).toEqual({ status: "ok", data: null });
    await stopped;
    await vi.advanceTimersByTimeAsync(5_000);
    vi.useRealTimers();
    expect(batches).toEqual([[notice]]);
    expect(pulls).toBe(answers.length);
  });
});
