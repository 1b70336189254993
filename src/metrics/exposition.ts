/**
 * Prometheus text exposition format 0.0.4, written by hand (no dependency):
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 *
 *   # HELP name text        (HELP text escapes \ and newline)
 *   # TYPE name counter|gauge
 *   name{label="value",...} 123
 *
 * Label values escape \, " and newline; metric and label names must match
 * [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]* (a name outside them is
 * a programmer's mistake: TypeError). Values: integers as they are, other
 * numbers as JavaScript prints them, NaN and +/-Inf spelt as Prometheus
 * reads them. One family per name, its samples sorted by their labels, so
 * the output is stable. Pure.
 */

export type MetricType = 'counter' | 'gauge';

export interface Sample {
  /** Label name -> value; absent or {}: no labels. */
  labels?: Readonly<Record<string, string>>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: readonly Sample[];
}

/** The Content-Type of this format. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels: Readonly<Record<string, string>> | undefined): string {
  if (!labels) return '';
  const names = Object.keys(labels).sort();
  if (names.length === 0) return '';
  const parts = names.map((n) => {
    if (!LABEL_NAME.test(n) || n.startsWith('__')) throw new TypeError(`Label name ${JSON.stringify(n)} is not valid: expected [a-zA-Z_][a-zA-Z0-9_]* not starting with __`);
    return `${n}="${escapeLabelValue(labels[n] ?? '')}"`;
  });
  return `{${parts.join(',')}}`;
}

/** One family: HELP, TYPE, then its samples sorted by label text. */
export function formatFamily(f: MetricFamily): string {
  if (!METRIC_NAME.test(f.name)) throw new TypeError(`Metric name ${JSON.stringify(f.name)} is not valid: expected [a-zA-Z_:][a-zA-Z0-9_:]*`);
  const lines = f.samples.map((s) => `${f.name}${labelText(s.labels)} ${formatValue(s.value)}`).sort();
  const seen = new Set<string>();
  for (const l of lines) {
    const key = l.slice(0, l.lastIndexOf(' '));
    if (seen.has(key)) throw new TypeError(`Metric ${key} appears twice in one family`);
    seen.add(key);
  }
  return [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`, ...lines].join('\n') + '\n';
}

/** Families in the order given; a name used twice is a TypeError. */
export function formatExposition(families: readonly MetricFamily[]): string {
  const names = new Set<string>();
  for (const f of families) {
    if (names.has(f.name)) throw new TypeError(`Metric family ${f.name} is given twice`);
    names.add(f.name);
  }
  return families.map(formatFamily).join('');
}
