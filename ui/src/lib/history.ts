/** Searching and filtering the upload history. Pure; fast enough for 10,000+ entries. */
import type { HistoryEntry } from "./api";

export type KindFilter = "all" | "images" | "other" | "private";

export interface HistoryFilter {
  query: string;
  profile: string | null;
  kind: KindFilter;
}

const haystacks = new WeakMap<HistoryEntry, string>();

function haystack(entry: HistoryEntry): string {
  let text = haystacks.get(entry);
  if (text === undefined) {
    text = [entry.name, entry.folder ?? "", entry.profile, entry.url, entry.tags.join(" "), entry.path]
      .join("\n")
      .toLowerCase();
    haystacks.set(entry, text);
  }
  return text;
}

/** Entries matching every word of the query (any order) and the filters, in input order. */
export function filterHistory(entries: readonly HistoryEntry[], filter: HistoryFilter): HistoryEntry[] {
  const words = filter.query.toLowerCase().split(/\s+/).filter(Boolean);
  return entries.filter((entry) => {
    if (filter.profile && entry.profile !== filter.profile) return false;
    if (filter.kind === "images" && !entry.is_image) return false;
    if (filter.kind === "other" && entry.is_image) return false;
    if (filter.kind === "private" && !entry.private) return false;
    if (words.length === 0) return true;
    const text = haystack(entry);
    return words.every((word) => text.includes(word));
  });
}

/** Adds new uploads (newest first) and drops deleted ones, keeping ids unique. */
export function mergeHistory(
  entries: readonly HistoryEntry[],
  added: readonly HistoryEntry[],
  deleted: readonly number[] = [],
): HistoryEntry[] {
  const gone = new Set(deleted);
  const fresh = [...added].reverse().filter((e) => !gone.has(e.id));
  const ids = new Set(fresh.map((e) => e.id));
  return [...fresh, ...entries.filter((e) => !ids.has(e.id) && !gone.has(e.id))];
}
