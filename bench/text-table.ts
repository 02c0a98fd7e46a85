/**
 * A plain-text table: columns padded to their widest cell, numbers right-aligned. Each column carries
 * its header and how to draw its cell from a row, so a header can never drift from its figures.
 */

export interface Column<Row> {
  header: string;
  align?: 'left' | 'right';
  cell: (row: Row) => string;
}

export function renderTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  const cells = rows.map((row) => columns.map((column) => column.cell(row)));
  const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((line) => line[i]!.length)));
  const line = (texts: readonly string[]): string =>
    texts
      .map((text, i) => ((columns[i]!.align ?? 'right') === 'left' ? text.padEnd(widths[i]!) : text.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(columns.map((column) => column.header)), rule, ...cells.map(line)].join('\n');
}

/** A left-aligned column (names, sizes). */
export function textColumn<Row>(header: string, cell: (row: Row) => string): Column<Row> {
  return { header, align: 'left', cell };
}

/** A right-aligned column (figures). */
export function figureColumn<Row>(header: string, cell: (row: Row) => string): Column<Row> {
  return { header, cell };
}
