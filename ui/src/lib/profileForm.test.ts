import { describe, expect, it } from "vitest";
import { blankForm, formFromInput, inputFromForm, parseTags, validateForm } from "./profileForm";
import type { ProfileForm } from "./profileForm";

const imagekit = (over: Partial<ProfileForm> = {}): ProfileForm => ({
  ...blankForm("imagekit"),
  name: "team",
  publicKey: "public_abc",
  urlEndpoint: "https://ik.imagekit.io/team",
  ...over,
});

describe("validateForm", () => {
  it("accepts a complete ImageKit profile", () => {
    expect(validateForm(imagekit())).toEqual({});
  });

  it("names what is missing for each provider", () => {
    expect(Object.keys(validateForm(blankForm("imagekit"))).sort()).toEqual(["name", "publicKey", "urlEndpoint"]);
    expect(Object.keys(validateForm(blankForm("cloudinary"))).sort()).toEqual(["apiKey", "cloudName", "name"]);
    expect(validateForm(imagekit({ auth: "remote" })).tokenUrl).toMatch(/required/);
  });

  it("refuses bad names, the built-in name and a taken name", () => {
    expect(validateForm(imagekit({ name: "has space" })).name).toBeDefined();
    expect(validateForm(imagekit({ name: "sandbox" })).name).toMatch(/built-in/);
    expect(validateForm(imagekit(), ["team"]).name).toMatch(/exists/);
    expect(validateForm(imagekit({ name: "x".repeat(65) })).name).toBeDefined();
  });

  it("wants full http(s) addresses and folders from the root", () => {
    expect(validateForm(imagekit({ urlEndpoint: "ik.imagekit.io/team" })).urlEndpoint).toMatch(/http/);
    expect(validateForm(imagekit({ apiUrl: "ftp://x" })).apiUrl).toBeDefined();
    expect(validateForm(imagekit({ folder: "web" })).folder).toMatch(/“\/”/);
    expect(validateForm(imagekit({ folder: "/web" }))).toEqual({});
  });
});

describe("inputFromForm", () => {
  it("sends only the chosen provider's fields, trimmed, empty as none", () => {
    const input = inputFromForm(
      imagekit({ name: " team ", tags: "a, ,b", cloudName: "leftover", tokenUrl: "https://t", folder: "  " }),
    );
    expect(input).toMatchObject({
      name: "team",
      provider: "imagekit",
      auth: "v2",
      tags: ["a", "b"],
      cloud_name: null,
      token_url: null,
      folder: null,
      private: false,
    });
    const cl = inputFromForm({ ...blankForm("cloudinary"), name: "c", cloudName: "demo", apiKey: "1", private: true, publicKey: "x" });
    expect(cl).toMatchObject({ provider: "cloudinary", auth: null, public_key: null, cloud_name: "demo", private: true });
  });

  it("round-trips what the backend sends", () => {
    const input = inputFromForm(imagekit({ auth: "remote", tokenUrl: "https://tokens.example.com/t", tags: "x" }));
    expect(inputFromForm(formFromInput(input))).toEqual(input);
  });
});

describe("parseTags", () => {
  it("splits on commas and drops empties", () => {
    expect(parseTags(" a,b ,, c ")).toEqual(["a", "b", "c"]);
    expect(parseTags("")).toEqual([]);
  });
});

describe("upload policies", () => {
  it("start new profiles removing the location and skipping duplicates, images at their size", () => {
    const input = inputFromForm(imagekit({}));
    expect(input).toMatchObject({ metadata: "strip-location", on_duplicate: "skip", max_dimension: null, quality: null });
  });

  it("send a resize limit with its quality, and round-trip it", () => {
    const input = inputFromForm(imagekit({ metadata: "strip-private", onDuplicate: "ask", maxDimension: " 2560 ", quality: "70" }));
    expect(input).toMatchObject({ metadata: "strip-private", on_duplicate: "ask", max_dimension: 2560, quality: 70 });
    expect(inputFromForm(formFromInput(input))).toEqual(input);
    // No limit: no quality either.
    expect(inputFromForm(imagekit({ quality: "70" })).quality).toBeNull();
  });

  it("refuse limits and qualities out of range", () => {
    expect(validateForm(imagekit({ maxDimension: "8" })).maxDimension).toMatch(/16 to 65535/);
    expect(validateForm(imagekit({ maxDimension: "big" })).maxDimension).toBeDefined();
    expect(validateForm(imagekit({ maxDimension: "2560", quality: "0" })).quality).toMatch(/1 to 100/);
    expect(validateForm(imagekit({ maxDimension: "2560", quality: "90" }))).toEqual({});
  });
});
