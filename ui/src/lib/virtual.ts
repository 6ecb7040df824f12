/** The rows a fixed-row-height list must render for its scroll position. Pure. */
export interface VisibleRange {
  start: number;
  end: number;
  /** Pixels above the first rendered row. */
  offset: number;
  /** Height of the whole list. */
  height: number;
}

export function visibleRange(
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  count: number,
  overscan = 6,
): VisibleRange {
  const height = Math.max(0, count * rowHeight);
  if (count === 0 || rowHeight <= 0) return { start: 0, end: 0, offset: 0, height };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const start = Math.max(0, Math.min(count - 1, first) - overscan);
  const shown = Math.ceil(Math.max(viewport, rowHeight) / rowHeight) + 1;
  const end = Math.min(count, first + shown + overscan);
  return { start, end, offset: start * rowHeight, height };
}
