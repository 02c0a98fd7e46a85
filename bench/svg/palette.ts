/** Colours of the charts: one per store, so a store looks the same in every chart. */
export const storeColors: Readonly<Record<string, string>> = {
  flushpoint: '#1f5fbf',
  raw: '#777777',
  device: '#000000',
  ceiling: '#17becf',
  lmdb: '#e07b00',
  'better-sqlite3': '#c0392b',
  'better-sqlite3-batched': '#8e44ad',
  'classic-level': '#27ae60',
};

/** Shades for a family of lines of one store (writer counts in the CDF). */
export const writerShades: readonly string[] = ['#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'];

export function colorOf(id: string): string {
  return storeColors[id] ?? '#444444';
}
