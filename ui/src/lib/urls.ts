/**
 * Links to uploaded files: CDN transformations and the formats "Copy" offers. Pure functions.
 *
 * ImageKit takes a transformation as a `tr:` path segment right after the URL endpoint
 * (`https://ik.imagekit.io/acme/tr:w-800,f-auto/photo.jpg`); Cloudinary as a segment right after
 * the delivery type (`https://res.cloudinary.com/demo/image/upload/w_800,f_auto/v1/photo.jpg`).
 */
import type { Provider } from "./api";

export type CopyFormat = "plain" | "markdown" | "html" | "template";

export interface LinkTarget {
  url: string;
  name: string;
  size?: number;
  provider: Provider | null;
  /** ImageKit's URL endpoint (where the `tr:` segment goes). */
  url_endpoint: string | null;
}

/** Common transformation presets, per provider syntax. */
export const PRESETS = {
  none: { label: "Original", imagekit: "", cloudinary: "" },
  w800: { label: "Width 800, auto format", imagekit: "w-800,f-auto", cloudinary: "w_800,f_auto" },
  w1600: { label: "Width 1600, auto format", imagekit: "w-1600,f-auto", cloudinary: "w_1600,f_auto" },
  thumb: { label: "Thumbnail 96", imagekit: "w-96,h-96,c-at_max", cloudinary: "w_96,h_96,c_fill" },
} as const;

export type Preset = keyof typeof PRESETS;

/** `url` with an ImageKit `tr:` segment after `endpoint`; `url` unchanged when it is not under it. */
export function imagekitTransform(url: string, endpoint: string, transformation: string): string {
  const tr = transformation.trim();
  if (!tr) return url;
  const base = endpoint.replace(/\/+$/, "");
  if (!url.startsWith(`${base}/`)) return url;
  const rest = url.slice(base.length + 1);
  // Already transformed: replace the segment rather than stacking another.
  const path = rest.startsWith("tr:") ? rest.slice(rest.indexOf("/") + 1) : rest;
  return `${base}/tr:${tr}/${path}`;
}

const CLOUDINARY_DELIVERY = /^(https?:\/\/[^/]+\/(?:res\/)?[^/]+\/(?:image|video|raw)\/(?:upload|private|authenticated))\/(.*)$/;

/** `url` with a Cloudinary transformation segment after `/upload/` (or private/authenticated). */
export function cloudinaryTransform(url: string, transformation: string): string {
  const tr = transformation.trim();
  if (!tr) return url;
  const match = CLOUDINARY_DELIVERY.exec(url);
  if (!match) return url;
  return `${match[1]}/${tr}/${match[2]}`;
}

/** The delivery URL with `preset` applied in the provider's syntax. */
export function transformedUrl(target: LinkTarget, preset: Preset): string {
  const spec = PRESETS[preset];
  if (target.provider === "imagekit" && target.url_endpoint) {
    return imagekitTransform(target.url, target.url_endpoint, spec.imagekit);
  }
  if (target.provider === "cloudinary") {
    return cloudinaryTransform(target.url, spec.cloudinary);
  }
  return target.url;
}

function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

function escapeMarkdown(text: string): string {
  return text.replace(/([\\[\]()])/g, "\\$1");
}

/** `{url}`, `{name}` and `{size}` (bytes) replaced; other braces left alone. */
export function applyTemplate(template: string, values: { url: string; name: string; size?: number }): string {
  return template.replace(/\{(url|name|size)\}/g, (_, key: "url" | "name" | "size") =>
    key === "size" ? String(values.size ?? "") : values[key],
  );
}

/** The text "Copy" puts on the clipboard. Images get image syntax in Markdown and HTML. */
export function formatLink(
  url: string,
  name: string,
  format: CopyFormat,
  options: { isImage?: boolean; template?: string; size?: number } = {},
): string {
  switch (format) {
    case "plain":
      return url;
    case "markdown":
      return `${options.isImage ? "!" : ""}[${escapeMarkdown(name)}](${url.replace(/\)/g, "%29").replace(/ /g, "%20")})`;
    case "html":
      return options.isImage
        ? `<img src="${escapeHtml(url)}" alt="${escapeHtml(name)}">`
        : `<a href="${escapeHtml(url)}">${escapeHtml(name)}</a>`;
    case "template":
      return applyTemplate(options.template ?? "{url}", { url, name, size: options.size });
  }
}

/** A small preview for an image upload, or null (private files need a signed link). */
export function thumbnailUrl(target: LinkTarget & { is_image: boolean; private: boolean }): string | null {
  if (!target.is_image || target.private || !target.url) return null;
  return transformedUrl(target, "thumb");
}

/** Only web links may be opened in the browser. */
export function isWebUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:";
  } catch {
    return false;
  }
}
