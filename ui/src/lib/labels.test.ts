import { describe, expect, it } from "vitest";

import type { Provider, SecretSource } from "./api";
import {
  authLabel,
  destinationLabel,
  providerLabel,
  secretHint,
  secretIsSet,
  secretLabel,
} from "./labels";

describe("secretLabel", () => {
  it.each<[SecretSource, string]>([
    ["keychain", "Key set (keychain)"],
    ["env", "Key set (env)"],
    ["file", "Key set (file)"],
    ["missing", "Key not set"],
    ["unavailable", "Keychain unavailable"],
  ])("labels %s as %s", (source, label) => {
    expect(secretLabel(source)).toBe(label);
    expect(secretHint(source)).not.toBe("");
  });

  it("shows an unknown source as is", () => {
    expect(secretLabel("vault" as SecretSource)).toBe("vault");
  });
});

describe("secretIsSet", () => {
  it("is false when no key can be read", () => {
    expect(secretIsSet("missing")).toBe(false);
    expect(secretIsSet("unavailable")).toBe(false);
    for (const source of ["keychain", "env", "file"] as const) {
      expect(secretIsSet(source)).toBe(true);
    }
  });
});

describe("providerLabel and destinationLabel", () => {
  it("name each provider and what its destination is", () => {
    expect(providerLabel("imagekit")).toBe("ImageKit");
    expect(providerLabel("cloudinary")).toBe("Cloudinary");
    expect(destinationLabel("imagekit")).toBe("URL endpoint");
    expect(destinationLabel("cloudinary")).toBe("Cloud name");
  });

  it("fall back for a provider this UI does not know", () => {
    expect(providerLabel("s3" as Provider)).toBe("s3");
    expect(destinationLabel("s3" as Provider)).toBe("Destination");
  });
});

describe("authLabel", () => {
  it.each([
    ["v2", "V2 JWT"],
    ["V1", "V1 signature"],
    ["remote", "Remote signing"],
    ["hmac", "hmac"],
  ])("labels %s as %s", (auth, label) => {
    expect(authLabel(auth)).toBe(label);
  });

  it("is null when the provider has no auth choice", () => {
    expect(authLabel(null)).toBeNull();
    expect(authLabel(undefined)).toBeNull();
    expect(authLabel("  ")).toBeNull();
  });
});
