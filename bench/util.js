'use strict';
// Statistics and formatting shared by the benchmark scripts.

/** Median of the finite values; NaN if there are none. */
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (xs, q) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const minOf = (xs) => Math.min(...xs);
const maxOf = (xs) => Math.max(...xs);
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const mib = (b) => b / (1024 * 1024);

/** A markdown table; rows[0] is the header. */
function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) => `| ${r.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  return [line(rows[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

const verdict = (ratio, goal = 1.5) => (Number.isFinite(ratio) ? (ratio <= goal ? 'meets goal' : 'misses goal') : '');

module.exports = { median, quantile, minOf, maxOf, fmt, mib, table, verdict };
