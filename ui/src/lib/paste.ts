/** Whether a keyboard paste should go to the upload queue rather than a text field. */
export function pasteTargetsQueue(target: EventTarget | null): boolean {
  if (!target || typeof (target as Element).closest !== "function") return true;
  const element = target as Element;
  return !element.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']");
}
