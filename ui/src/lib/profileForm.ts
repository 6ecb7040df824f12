/**
 * The profile editor's form: what it starts from, what it sends, and the checks that can be
 * made before sending (the Rust side checks everything again and has the last word). Pure.
 */
import type { Auth, Metadata, OnDuplicate, ProfileInput, Provider } from "./api";

export type { Auth, Metadata, OnDuplicate };

/** Every input of the form, as the user types it. */
export interface ProfileForm {
  name: string;
  provider: Provider;
  auth: Auth;
  publicKey: string;
  urlEndpoint: string;
  uploadUrl: string;
  apiUrl: string;
  tokenUrl: string;
  folder: string;
  /** Comma-separated. */
  tags: string;
  cloudName: string;
  apiKey: string;
  private: boolean;
  metadata: Metadata;
  onDuplicate: OnDuplicate;
  /** Pixels on the long side; empty: images are sent at their size. */
  maxDimension: string;
  /** JPEG quality of resized images; empty: 85. */
  quality: string;
}

export type FormErrors = Partial<Record<keyof ProfileForm, string>>;

export function blankForm(provider: Provider = "imagekit"): ProfileForm {
  return {
    name: "",
    provider,
    auth: "v2",
    publicKey: "",
    urlEndpoint: "",
    uploadUrl: "",
    apiUrl: "",
    tokenUrl: "",
    folder: "",
    tags: "",
    cloudName: "",
    apiKey: "",
    private: false,
    // New profiles remove the location from photos before upload.
    metadata: "strip-location",
    onDuplicate: "skip",
    maxDimension: "",
    quality: "",
  };
}

export function formFromInput(input: ProfileInput): ProfileForm {
  const auth: Auth = input.auth ?? "v2";
  return {
    name: input.name,
    provider: input.provider,
    auth,
    publicKey: input.public_key ?? "",
    urlEndpoint: input.url_endpoint ?? "",
    uploadUrl: input.upload_url ?? "",
    apiUrl: input.api_url ?? "",
    tokenUrl: input.token_url ?? "",
    folder: input.folder ?? "",
    tags: input.tags.join(", "),
    cloudName: input.cloud_name ?? "",
    apiKey: input.api_key ?? "",
    private: input.private,
    metadata: input.metadata,
    onDuplicate: input.on_duplicate,
    maxDimension: input.max_dimension === null ? "" : String(input.max_dimension),
    quality: input.quality === null || input.quality === 85 ? "" : String(input.quality),
  };
}

/** `a, b ,, c` → `["a", "b", "c"]`. */
export function parseTags(text: string): string[] {
  return text
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
}

const orNull = (text: string): string | null => (text.trim() === "" ? null : text.trim());

/** What is sent: only the fields of the chosen provider (and scheme), trimmed, empty = none. */
export function inputFromForm(form: ProfileForm): ProfileInput {
  const imagekit = form.provider === "imagekit";
  return {
    name: form.name.trim(),
    provider: form.provider,
    auth: imagekit ? form.auth : null,
    public_key: imagekit ? orNull(form.publicKey) : null,
    url_endpoint: imagekit ? orNull(form.urlEndpoint) : null,
    upload_url: imagekit ? orNull(form.uploadUrl) : null,
    api_url: orNull(form.apiUrl),
    token_url: imagekit && form.auth === "remote" ? orNull(form.tokenUrl) : null,
    folder: orNull(form.folder),
    tags: parseTags(form.tags),
    cloud_name: imagekit ? null : orNull(form.cloudName),
    api_key: imagekit ? null : orNull(form.apiKey),
    private: imagekit ? false : form.private,
    metadata: form.metadata,
    on_duplicate: form.onDuplicate,
    max_dimension: wholeNumber(form.maxDimension),
    quality: wholeNumber(form.maxDimension) === null ? null : wholeNumber(form.quality),
  };
}

/** A whole number typed in a field, or null when it is empty or not one. */
function wholeNumber(text: string): number | null {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : null;
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text.trim());
    return url.protocol === "https:" || url.protocol === "http:";
  } catch {
    return false;
  }
}

/** The problems to fix before saving, by field; empty when the form can be sent. */
export function validateForm(form: ProfileForm, existingNames: readonly string[] = []): FormErrors {
  const errors: FormErrors = {};
  const name = form.name.trim();
  if (!NAME.test(name)) {
    errors.name = "Use 1 to 64 letters, digits, “-”, “_” or “.”";
  } else if (name === "sandbox") {
    errors.name = "“sandbox” is the built-in profile: choose another name";
  } else if (existingNames.includes(name)) {
    errors.name = `A profile named “${name}” exists already`;
  }
  const required = (field: keyof ProfileForm, label: string) => {
    if (String(form[field]).trim() === "") errors[field] = `${label} is required`;
  };
  const url = (field: keyof ProfileForm) => {
    const value = String(form[field]).trim();
    if (value !== "" && !isHttpUrl(value)) errors[field] = "Enter a full http(s):// address";
  };
  if (form.provider === "imagekit") {
    required("publicKey", "The public key");
    required("urlEndpoint", "The URL endpoint");
    if (form.auth === "remote") required("tokenUrl", "The token server address");
    url("urlEndpoint");
    url("uploadUrl");
    url("tokenUrl");
  } else {
    required("cloudName", "The cloud name");
    required("apiKey", "The API key");
  }
  url("apiUrl");
  const folder = form.folder.trim();
  if (folder !== "" && !folder.startsWith("/")) errors.folder = "Start the folder with “/”";
  const inRange = (field: "maxDimension" | "quality", min: number, max: number, message: string) => {
    const text = form[field].trim();
    const n = wholeNumber(text);
    if (text !== "" && (n === null || n < min || n > max)) errors[field] = message;
  };
  inRange("maxDimension", 16, 65535, "Give pixels from 16 to 65535, or leave it empty");
  inRange("quality", 1, 100, "Give a quality from 1 to 100");
  return errors;
}
