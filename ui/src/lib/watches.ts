/** The Watched folders screen's form (add and edit) and how a watch's counts read. Pure. */
import type { WatchInput, WatchView } from "./api";
import { parseTags } from "./profileForm";

/** What the add or edit form holds, as typed. */
export type WatchForm = {
  profile: string;
  folder: string;
  tags: string;
  recursive: boolean;
};

export function emptyWatchForm(profile = ""): WatchForm {
  return { profile, folder: "", tags: "", recursive: true };
}

/** The form for editing `watch`, filled with what it was configured with. */
export function formFromWatch(watch: WatchView): WatchForm {
  return {
    profile: watch.profile,
    folder: watch.folder ?? "",
    tags: (watch.tags ?? []).join(", "),
    recursive: watch.recursive,
  };
}

/** What is sent: empty fields mean "the profile's". The backend checks it again. */
export function inputFromWatchForm(form: WatchForm, path: string): WatchInput {
  const folder = form.folder.trim();
  const tags = parseTags(form.tags);
  return {
    path,
    profile: form.profile,
    folder: folder === "" ? null : folder,
    tags: form.tags.trim() === "" ? null : tags,
    recursive: form.recursive,
  };
}

/** Why the form cannot be sent as it is, or null. Every other rule is the config's: the
 * backend refuses what the config would, and the screen shows its message. */
export function watchFormProblem(form: WatchForm): string | null {
  if (form.profile.trim() === "") return "Choose a profile for the folder’s uploads.";
  return null;
}

/** `3 uploaded today · 2 waiting · 1 failed`. */
export function countsLine(watch: Pick<WatchView, "uploaded_today" | "waiting" | "failed">): string {
  const parts = [`${watch.uploaded_today.toLocaleString()} uploaded today`];
  if (watch.waiting > 0) parts.push(`${watch.waiting.toLocaleString()} waiting`);
  if (watch.failed > 0) parts.push(`${watch.failed.toLocaleString()} failed`);
  return parts.join(" · ");
}

/** Whether every watch is paused (the "Resume all" button). */
export function allPaused(watches: WatchView[]): boolean {
  return watches.length > 0 && watches.every((w) => w.state === "paused");
}
