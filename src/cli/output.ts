/** Output: aligned plain-text tables for people, JSON with --json. */

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** A table with a header row; empty cells show as "-". */
export function formatTable(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | null>>): string {
  const cells = rows.map((r) => headers.map((_, i) => {
    const v = r[i];
    return v === null || v === undefined || v === '' ? '-' : v;
  }));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}

export function printTable(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | null>>, empty: string): void {
  if (rows.length === 0) {
    process.stdout.write(empty + '\n');
    return;
  }
  process.stdout.write(formatTable(headers, rows));
}

export function printLine(text: string): void {
  process.stdout.write(text + '\n');
}
