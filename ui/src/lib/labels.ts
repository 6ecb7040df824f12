/** How backend values read on screen. Pure functions: no DOM, no IPC. */
import type { Provider, SecretSource } from "./api";

const SECRET_LABELS: Record<SecretSource, string> = {
  keychain: "Key set (keychain)",
  env: "Key set (env)",
  file: "Key set (file)",
  missing: "Key not set",
  unavailable: "Keychain unavailable",
};

const SECRET_HINTS: Record<SecretSource, string> = {
  keychain: "The private key is read from the system keychain.",
  env: "The private key is read from an environment variable.",
  file: "The private key is read from a key file.",
  missing: "No private key in the keychain, the environment or a key file: uploads will fail.",
  unavailable: "The system keychain could not be read.",
};

const PROVIDER_LABELS: Record<Provider, string> = {
  imagekit: "ImageKit",
  cloudinary: "Cloudinary",
};

const DESTINATION_LABELS: Record<Provider, string> = {
  imagekit: "URL endpoint",
  cloudinary: "Cloud name",
};

const AUTH_LABELS: Record<string, string> = {
  v2: "V2 JWT",
  v1: "V1 signature",
  remote: "Remote signing",
};

// The lookups below fall back to the raw value: a newer backend may send a value this UI
// does not know yet, and showing it beats showing nothing.

/** Badge text for where a profile's key comes from. Never includes the key itself. */
export function secretLabel(source: SecretSource): string {
  return SECRET_LABELS[source] ?? source;
}

/** Longer explanation of {@link secretLabel}, for a tooltip. */
export function secretHint(source: SecretSource): string {
  return SECRET_HINTS[source] ?? "";
}

/** Whether uploads with this profile have a key to sign with. */
export function secretIsSet(source: SecretSource): boolean {
  return source !== "missing" && source !== "unavailable";
}

export function providerLabel(provider: Provider): string {
  return PROVIDER_LABELS[provider] ?? provider;
}

/** What a profile's `destination` is for this provider. */
export function destinationLabel(provider: Provider): string {
  return DESTINATION_LABELS[provider] ?? "Destination";
}

/** Auth scheme label, or `null` when the provider has only one scheme. */
export function authLabel(auth: string | null | undefined): string | null {
  if (auth == null || auth.trim() === "") return null;
  return AUTH_LABELS[auth.trim().toLowerCase()] ?? auth;
}

const WATCH_LABELS: Record<string, string> = {
  starting: "Starting",
  watching: "Watching",
  paused: "Paused",
  offline: "Offline",
  missing: "Missing",
  error: "Error",
};

/** Status of a watched folder. */
export function watchLabel(state: string): string {
  return WATCH_LABELS[state] ?? state;
}
