/**
 * Light or dark: the system's choice unless the user picked one in Settings. The choice is
 * kept in this webview's storage (it is how this window looks, nothing the core needs), and
 * the page always carries the resolved theme as `<html data-theme="light|dark">`, which the
 * design tokens in app.css follow.
 */

export type ThemeChoice = "system" | "light" | "dark";
export type Theme = "light" | "dark";

const KEY = "dropkey.theme";
const DARK_QUERY = "(prefers-color-scheme: dark)";

export function parseChoice(value: string | null | undefined): ThemeChoice {
  return value === "light" || value === "dark" ? value : "system";
}

export function resolveTheme(choice: ThemeChoice, systemDark: boolean): Theme {
  return choice === "system" ? (systemDark ? "dark" : "light") : choice;
}

export function loadChoice(storage: Pick<Storage, "getItem"> | undefined = globalThis.localStorage): ThemeChoice {
  try {
    return parseChoice(storage?.getItem(KEY));
  } catch {
    // Storage can be unavailable (a locked profile): the system's choice then.
    return "system";
  }
}

let current: ThemeChoice = "system";
let stopFollowing: (() => void) | null = null;

/** Applies `choice` to the page and, for "system", follows the system while it changes. */
export function applyTheme(choice: ThemeChoice, save = true) {
  current = choice;
  stopFollowing?.();
  stopFollowing = null;
  const media = window.matchMedia(DARK_QUERY);
  const set = () => {
    document.documentElement.dataset.theme = resolveTheme(current, media.matches);
  };
  set();
  if (choice === "system") {
    media.addEventListener("change", set);
    stopFollowing = () => media.removeEventListener("change", set);
  }
  if (save) {
    try {
      localStorage.setItem(KEY, choice);
    } catch {
      // Not kept: it still applies to this run.
    }
  }
}

export function currentChoice(): ThemeChoice {
  return current;
}
