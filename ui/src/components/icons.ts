/** Inline SVG paths (24x24, stroke) for the few icons the UI needs; no icon font, no fetch. */
export const ICONS = {
  upload: "M12 16V4m0 0-4 4m4-4 4 4M4 16v2a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-2",
  history: "M3 12a9 9 0 1 0 3-6.7M3 4v4h4m5-1v5l3 2",
  settings:
    "M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6Zm7.4-3a7.4 7.4 0 0 0-.1-1.2l2-1.6-2-3.4-2.4 1a7.6 7.6 0 0 0-2-1.2L14.5 3h-5l-.4 2.6a7.6 7.6 0 0 0-2 1.2l-2.4-1-2 3.4 2 1.6a7.4 7.4 0 0 0 0 2.4l-2 1.6 2 3.4 2.4-1a7.6 7.6 0 0 0 2 1.2l.4 2.6h5l.4-2.6a7.6 7.6 0 0 0 2-1.2l2.4 1 2-3.4-2-1.6c.1-.4.1-.8.1-1.2Z",
  x: "M6 6l12 12M18 6 6 18",
  retry: "M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7",
  copy: "M9 9h10v10H9zM5 15V5h10",
  open: "M14 4h6v6m0-6-9 9M19 14v5a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1h5",
  key: "M15 7a4 4 0 1 1-3.9 5H7v3H4v-3H3v-3h8.1A4 4 0 0 1 15 7Z",
  trash: "M4 7h16M10 11v6m4-6v6M6 7l1 13h10l1-13M9 7V4h6v3",
  file: "M14 3H6a1 1 0 0 0-1 1v16a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1V8l-5-5Zm0 0v5h5",
  image: "M4 5h16v14H4zM4 16l5-5 4 4 3-3 4 4M15 9.5a1 1 0 1 0 0-.01",
  lock: "M7 11V8a5 5 0 0 1 10 0v3M5 11h14v10H5z",
  folder: "M3 6a1 1 0 0 1 1-1h5l2 2h9a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1Z",
  pause: "M8 5v14M16 5v14",
  play: "M7 4v16l13-8Z",
  check: "M5 12.5 10 17l9-10",
  // A cloud with a slash: the upload host cannot be reached.
  offline: "M7 18h10a4 4 0 0 0 .7-7.94A6 6 0 0 0 6.3 9.1 4.5 4.5 0 0 0 7 18ZM3 3l18 18",
  // A warning triangle: something must be fixed before anything works.
  alert: "M12 3 2 20h20L12 3ZM12 10v4m0 3v.01",
} as const;

export type IconName = keyof typeof ICONS;
