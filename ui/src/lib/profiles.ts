/** The Profiles screen's state and how it is loaded. Pure: the backend comes in as an `Api`. */
import type { Api, AppError, ProfileView } from "./api";
import { toAppError } from "./api";

export type ProfilesState =
  | { status: "loading" }
  | { status: "error"; error: AppError }
  | { status: "ready"; profiles: ProfileView[] };

const byName = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

/** The default profile first, then the rest by name. Returns a new array. */
export function sortProfiles(profiles: readonly ProfileView[]): ProfileView[] {
  return [...profiles].sort(
    (a, b) =>
      Number(b.is_default) - Number(a.is_default) ||
      byName.compare(a.name, b.name) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

/** Asks the backend for the profiles; never rejects. */
export async function loadProfiles(api: Api): Promise<ProfilesState> {
  try {
    const result = await api.listProfiles();
    return result.status === "ok"
      ? { status: "ready", profiles: sortProfiles(result.data) }
      : { status: "error", error: result.error };
  } catch (error) {
    return { status: "error", error: toAppError(error) };
  }
}
