/**
 * File paths in pasted text: `file://` URIs (text/uri-list, what file managers put on the
 * clipboard) or absolute paths, one per line. Lines that are neither are ignored (GNOME adds a
 * leading `copy`/`cut`); the backend checks every path again.
 */
export function pathsFromText(text: string): string[] {
  const paths: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    if (line.startsWith("file://")) {
      try {
        const url = new URL(line);
        if (url.host === "" || url.host === "localhost") paths.push(decodeURIComponent(url.pathname));
      } catch {
        // not a URI after all
      }
    } else if (line.startsWith("/") || /^[A-Za-z]:[\\/]/.test(line)) {
      paths.push(line);
    }
  }
  return [...new Set(paths)];
}

/** Whether a keyboard paste should go to the upload queue rather than a text field. */
export function pasteTargetsQueue(target: EventTarget | null): boolean {
  if (!target || typeof (target as Element).closest !== "function") return true;
  const element = target as Element;
  return !element.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']");
}
