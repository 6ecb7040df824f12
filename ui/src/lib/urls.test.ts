import { describe, expect, it } from "vitest";

import {
  applyTemplate,
  cloudinaryTransform,
  formatLink,
  imagekitTransform,
  isWebUrl,
  thumbnailUrl,
  transformedUrl,
} from "./urls";

const ik = {
  url: "https://ik.imagekit.io/acme/uploads/chat/photo.jpg",
  name: "photo.jpg",
  provider: "imagekit" as const,
  url_endpoint: "https://ik.imagekit.io/acme",
};
const cl = {
  url: "https://res.cloudinary.com/demo/image/upload/v1712345678/kyc/1/passport.jpg",
  name: "passport.jpg",
  provider: "cloudinary" as const,
  url_endpoint: null,
};

describe("imagekitTransform", () => {
  it("puts a tr: segment right after the URL endpoint", () => {
    expect(imagekitTransform(ik.url, ik.url_endpoint, "w-800,f-auto")).toBe(
      "https://ik.imagekit.io/acme/tr:w-800,f-auto/uploads/chat/photo.jpg",
    );
  });

  it("accepts an endpoint with a trailing slash and replaces an existing tr: segment", () => {
    const once = imagekitTransform(ik.url, `${ik.url_endpoint}/`, "w-800");
    expect(imagekitTransform(once, ik.url_endpoint, "w-96")).toBe(
      "https://ik.imagekit.io/acme/tr:w-96/uploads/chat/photo.jpg",
    );
  });

  it("leaves URLs outside the endpoint and empty transformations alone", () => {
    expect(imagekitTransform("https://other.example/a.jpg", ik.url_endpoint, "w-800")).toBe(
      "https://other.example/a.jpg",
    );
    expect(imagekitTransform(ik.url, ik.url_endpoint, " ")).toBe(ik.url);
  });

  it("works for the local sandbox's endpoint", () => {
    expect(
      imagekitTransform("http://127.0.0.1:7371/ik/sandbox/uploads/a.png", "http://127.0.0.1:7371/ik/sandbox", "w-800,f-auto"),
    ).toBe("http://127.0.0.1:7371/ik/sandbox/tr:w-800,f-auto/uploads/a.png");
  });
});

describe("cloudinaryTransform", () => {
  it("puts the segment right after /upload/", () => {
    expect(cloudinaryTransform(cl.url, "w_800,f_auto")).toBe(
      "https://res.cloudinary.com/demo/image/upload/w_800,f_auto/v1712345678/kyc/1/passport.jpg",
    );
  });

  it("handles private and video delivery, and the sandbox's /res/ prefix", () => {
    expect(cloudinaryTransform("https://res.cloudinary.com/demo/video/private/v1/clip.mp4", "w_800")).toBe(
      "https://res.cloudinary.com/demo/video/private/w_800/v1/clip.mp4",
    );
    expect(cloudinaryTransform("http://127.0.0.1:7371/res/demo/image/upload/v1/a.png", "w_800,f_auto")).toBe(
      "http://127.0.0.1:7371/res/demo/image/upload/w_800,f_auto/v1/a.png",
    );
  });

  it("leaves anything else alone", () => {
    expect(cloudinaryTransform("https://example.com/demo/image/fetch/a.jpg", "w_800")).toBe(
      "https://example.com/demo/image/fetch/a.jpg",
    );
    expect(cloudinaryTransform(cl.url, "")).toBe(cl.url);
  });
});

describe("transformedUrl", () => {
  it("uses each provider's syntax for the same preset", () => {
    expect(transformedUrl(ik, "w800")).toContain("/tr:w-800,f-auto/");
    expect(transformedUrl(cl, "w800")).toContain("/upload/w_800,f_auto/");
    expect(transformedUrl(ik, "none")).toBe(ik.url);
    expect(transformedUrl({ ...ik, provider: null }, "w800")).toBe(ik.url);
  });
});

describe("formatLink", () => {
  const url = "https://ik.imagekit.io/acme/a b).png";

  it("formats plain, Markdown and HTML", () => {
    expect(formatLink(url, "a.png", "plain")).toBe(url);
    expect(formatLink(url, "a [1].png", "markdown")).toBe(
      "[a \\[1\\].png](https://ik.imagekit.io/acme/a%20b%29.png)",
    );
    expect(formatLink(url, "a.png", "markdown", { isImage: true })).toMatch(/^!\[a\.png\]/);
    expect(formatLink('https://x/"q".png', "<b>", "html")).toBe(
      '<a href="https://x/&quot;q&quot;.png">&lt;b&gt;</a>',
    );
    expect(formatLink("https://x/a.png", "a", "html", { isImage: true })).toBe(
      '<img src="https://x/a.png" alt="a">',
    );
  });

  it("fills a user template", () => {
    expect(formatLink("https://x/a.png", "a.png", "template", { template: "{name}: {url} ({size} B) {other}", size: 42 })).toBe(
      "a.png: https://x/a.png (42 B) {other}",
    );
    expect(applyTemplate("{url}{url}", { url: "u", name: "n" })).toBe("uu");
  });
});

describe("thumbnailUrl", () => {
  it("is a small transformed image for public images only", () => {
    expect(thumbnailUrl({ ...ik, is_image: true, private: false })).toContain("/tr:w-96,h-96");
    expect(thumbnailUrl({ ...cl, is_image: true, private: false })).toContain("/upload/w_96,h_96,c_fill/");
    expect(thumbnailUrl({ ...ik, is_image: false, private: false })).toBeNull();
    expect(thumbnailUrl({ ...ik, is_image: true, private: true })).toBeNull();
  });
});

describe("isWebUrl", () => {
  it("accepts http(s) only", () => {
    expect(isWebUrl("https://a.example/x")).toBe(true);
    expect(isWebUrl("http://127.0.0.1:7371/x")).toBe(true);
    expect(isWebUrl("file:///etc/passwd")).toBe(false);
    expect(isWebUrl("javascript:alert(1)")).toBe(false);
    expect(isWebUrl("not a url")).toBe(false);
  });
});
