/**
 * Where the keyboard goes when part of the page opens or closes. An inline form takes the
 * focus on its first field when it opens; when it closes with the focus inside it, the focus
 * goes back to what opened it, or (when that is gone or disabled, as an Edit button is while
 * its form is open) to `fallback`. Without this the focus falls to the top of the page and a
 * keyboard user starts over.
 */

const FIELDS = "input:not([type=hidden]):not(:disabled), select:not(:disabled), textarea:not(:disabled), button:not(:disabled)";

export interface FocusOptions {
  /** Focus the first field on open (default true; a modal `<dialog>` does it itself). */
  focusFirst?: boolean;
  /** Where the focus goes on close when the opener cannot take it. */
  fallback?: () => HTMLElement | null | undefined;
}

/** Whether `el` can take the focus back: still on the page, and not a disabled control. */
export function canTakeFocus(el: HTMLElement | null | undefined): el is HTMLElement {
  return !!el && el.isConnected && !(el as HTMLButtonElement).disabled;
}

/** Svelte action: `<form use:focusWithin={{ fallback: () => ... }}>`. */
export function focusWithin(node: HTMLElement, options: FocusOptions = {}) {
  const active = document.activeElement;
  const opener = active instanceof HTMLElement && active !== document.body ? active : null;
  let current = options;
  if (current.focusFirst !== false) node.querySelector<HTMLElement>(FIELDS)?.focus();
  return {
    update(next: FocusOptions) {
      current = next;
    },
    destroy() {
      // After the page has settled (the opener may be enabled or re-rendered in the same
      // update), and only if the focus went down with this part: a click elsewhere wins.
      setTimeout(() => {
        if (document.activeElement && document.activeElement !== document.body) return;
        const target = canTakeFocus(opener) ? opener : current.fallback?.();
        target?.focus();
      }, 0);
    },
  };
}
