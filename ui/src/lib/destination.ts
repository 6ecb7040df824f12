/** The batch destination form: prefilled from a profile's defaults, editable per batch. */
import type { Destination } from "./api";

export interface DestinationDraft {
  profile: string;
  /** Remote folder; empty = the provider's root. */
  folder: string;
  /** Comma-separated. */
  tags: string;
  /** A dropped folder keeps its sub folders under the remote folder. */
  keepStructure: boolean;
}

export function draftFor(
  profile: { name: string; folder: string | null; tags: string[] } | undefined,
  keepStructure = false,
): DestinationDraft {
  return {
    profile: profile?.name ?? "",
    folder: profile?.folder ?? "",
    tags: profile?.tags.join(", ") ?? "",
    keepStructure,
  };
}

export function parseTags(text: string): string[] {
  return [...new Set(text.split(",").map((t) => t.trim()).filter(Boolean))];
}

/** What `enqueue_files` gets: the folder and tags as shown (empty means none). */
export function toDestination(draft: DestinationDraft): Destination {
  return { profile: draft.profile, folder: draft.folder.trim(), tags: parseTags(draft.tags) };
}

/** A problem the form can show before the backend sees it (the backend checks again). */
export function draftProblem(draft: DestinationDraft): string | null {
  if (!draft.profile) return "Choose a profile.";
  const folder = draft.folder.trim();
  if (folder.split("/").some((part) => part === "." || part === "..")) {
    return "The folder must not contain “.” or “..”.";
  }
  if (parseTags(draft.tags).some((t) => t.length > 128)) return "Tags are at most 128 characters.";
  return null;
}
