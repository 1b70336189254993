/**
 * `fleetboot host import FILE.csv`: hosts from a CSV file, as FOG's host
 * import takes them. Pure: text in, rows or an error naming the line out.
 *
 * Columns: with a header line, any order of mac, name, ip (or address),
 * entry, groups (or group); groups are separated by ';' or '|'. Without a
 * header (the first line's first field is a MAC), the order is
 * mac,name,ip,entry,groups. Fields may be "quoted" ("" is a quote inside).
 * Blank lines and lines starting with '#' are skipped; empty fields mean
 * "none".
 */
export interface CsvHost {
  mac: string;
  name?: string;
  ip?: string;
  entry?: string;
  groups?: string[];
}

const COLUMNS: Record<string, keyof CsvHost> = { mac: 'mac', name: 'name', hostname: 'name', ip: 'ip', address: 'ip', entry: 'entry', groups: 'groups', group: 'groups' };
const DEFAULT_ORDER: (keyof CsvHost)[] = ['mac', 'name', 'ip', 'entry', 'groups'];

/** One CSV line's fields; null when a quote is not closed. */
export function csvFields(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    let k = i;
    while (line[k] === ' ' || line[k] === '\t') k++;
    if (line[k] === '"') {
      i = k;
      i++;
      for (;;) {
        if (i >= line.length) return null;
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i];
        i++;
      }
      while (i < line.length && line[i] !== ',') i++;
    } else {
      const j = line.indexOf(',', i);
      field = j < 0 ? line.slice(i) : line.slice(i, j);
      i = j < 0 ? line.length : j;
    }
    out.push(field.trim());
    if (i >= line.length) return out;
    i++; // the comma
  }
}

const MACISH = /^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$/i;

/** The hosts of a CSV text; throws an Error naming the line and what was wrong. */
export function parseHostCsv(text: string): CsvHost[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let order: (keyof CsvHost)[] | null = null;
  const hosts: CsvHost[] = [];
  lines.forEach((raw, idx) => {
    const n = idx + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = csvFields(line);
    if (fields === null) throw new Error(`line ${n}: a quoted field is not closed`);
    if (order === null) {
      if (MACISH.test(fields[0] ?? '')) {
        order = DEFAULT_ORDER;
      } else {
        order = fields.map((f) => {
          const c = COLUMNS[f.toLowerCase()];
          if (!c) throw new Error(`line ${n}: unknown column ${JSON.stringify(f)}: expected mac, name, ip, entry, groups`);
          return c;
        });
        if (!order.includes('mac')) throw new Error(`line ${n}: the header has no mac column`);
        return;
      }
    }
    if (fields.length > order.length) throw new Error(`line ${n}: ${fields.length} fields, expected at most ${order.length} (${order.join(',')})`);
    const h: CsvHost = { mac: '' };
    order.forEach((col, i) => {
      const v = fields[i] ?? '';
      if (v === '') return;
      if (col === 'groups') h.groups = v.split(/[;|]/).map((g) => g.trim()).filter(Boolean);
      else h[col] = v;
    });
    if (h.mac === '') throw new Error(`line ${n}: no MAC address`);
    hosts.push(h);
  });
  return hosts;
}
