/** The rows a fixed-row-height list must render for its scroll position. Pure. */
export interface VisibleRange {
  start: number;
  end: number;
  /** Pixels above the first rendered row. */
  offset: number;
  /** Height of the whole list. */
  height: number;
}

/**
 * Browsers cap an element's height (WebKit near 2^25 px), below a million 64 px rows: past
 * this height the scrollbar maps proportionally onto the rows instead of one pixel to a pixel.
 */
export const MAX_SCROLL_HEIGHT = 8_000_000;

export function visibleRange(
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  count: number,
  overscan = 6,
  maxHeight = MAX_SCROLL_HEIGHT,
): VisibleRange {
  const full = Math.max(0, count * rowHeight);
  const height = Math.min(full, maxHeight);
  if (count === 0 || rowHeight <= 0) return { start: 0, end: 0, offset: 0, height };
  const top = Math.max(0, scrollTop);
  // Where the view's top is in the full list: the same pixel, or the same fraction of the way.
  const exact = full > height ? (Math.min(top, Math.max(1, height - viewport)) / Math.max(1, height - viewport)) * Math.max(0, full - viewport) : top;
  const first = Math.floor(exact / rowHeight);
  const start = Math.max(0, Math.min(count - 1, first) - overscan);
  const shown = Math.ceil(Math.max(viewport, rowHeight) / rowHeight) + 1;
  const end = Math.min(count, first + shown + overscan);
  const offset = full > height ? top - (exact - start * rowHeight) : start * rowHeight;
  return { start, end, offset, height };
}
