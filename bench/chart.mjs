#!/usr/bin/env node
// Renders the ratios of one results file as an SVG bar chart.
//
//   node bench/chart.mjs [bench/results/<timestamp>.json] [--out bench/results/chart.svg]
//
// One group per scenario; bars are wschan/ws and wschan/bun (and bun/ws for reference), each
// oriented so that a longer bar is better: for "lower is better" scenarios (time, memory) the
// bar is peer/wschan. A dashed line marks 1× (parity) and a tick marks each issue-4 target.

import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIdx = args.indexOf('--out');
const out = outIdx >= 0 ? args[outIdx + 1] : path.join(BENCH, 'results/chart.svg');
let file = args.find((a, i) => !a.startsWith('--') && (outIdx < 0 || i !== outIdx + 1));
if (!file) {
  const dir = path.join(BENCH, 'results');
  const files = readdirSync(dir).filter((f) => /^\d{4}-.*\.json$/.test(f)).sort();
  if (files.length === 0) {
    console.error('no results file in bench/results; run node bench/run.mjs first');
    process.exit(1);
  }
  file = path.join(dir, files[files.length - 1]);
}
const results = JSON.parse(readFileSync(file, 'utf8'));

const PAIRS = [
  { a: 'wschan', b: 'ws', color: '#2563eb', label: 'wschan vs ws' },
  { a: 'wschan', b: 'bun', color: '#16a34a', label: 'wschan vs Bun' },
  { a: 'bun', b: 'ws', color: '#9ca3af', label: 'Bun vs ws (reference)' },
  // Only in the churn and idle scenarios: the least a node:net server can do (peers/node-floor.mjs).
  { a: 'floor', b: 'ws', color: '#f59e0b', label: 'node:net floor vs ws (reference)' },
];

/** "How many times better" a is than b, oriented so that > 1 is better for a. */
function advantage(s, a, b) {
  const x = s.summary?.[a]?.median;
  const y = s.summary?.[b]?.median;
  if (!x || !y) return null;
  return s.better === 'lower' ? y / x : x / y;
}

function targetFor(s, peer) {
  const t = s.target?.[peer];
  if (t === undefined) return null;
  return s.better === 'lower' ? 1 / t : t;
}

const groups = results.scenarios.map((s) => ({
  title: s.title,
  bars: PAIRS.map((p) => ({ ...p, v: advantage(s, p.a, p.b), target: p.a === 'wschan' ? targetFor(s, p.b) : null })),
}));

const all = groups.flatMap((g) => g.bars.flatMap((b) => [b.v, b.target])).filter((v) => v !== null && v > 0);
// Log scale: Bun vs ws spans 0.3×–30×; a linear axis would flatten everything else.
const lo = Math.min(0.1, ...all.map((v) => v / 1.5));
const hi = Math.max(10, ...all.map((v) => v * 1.5));
// Room for the longest scenario title (about 6.4 px per character at 12 px).
const left = Math.min(480, 24 + Math.max(...groups.map((g) => g.title.length)) * 6.4);
const W = left + 600;
const right = 60;
const barH = 14;
const groupGap = 18;
const top = 86;
const plotW = W - left - right;
const x = (v) => left + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
const groupH = PAIRS.length * (barH + 3) + groupGap;
const H = top + groups.length * groupH + 40;
const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const parts = [];
parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="system-ui, sans-serif" font-size="12">`);
parts.push(`<rect width="100%" height="100%" fill="white"/>`);
const m = results.meta ?? {};
parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">wschan benchmarks: advantage ratio (longer is better, log scale)</text>`);
parts.push(
  `<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${esc(`Node ${m.versions?.node ?? '?'}, ws ${m.versions?.ws ?? '?'}, Bun ${m.versions?.bun ?? '?'}; ${m.machine?.cpus ?? '?'} cores; ${m.reps ?? '?'} rep(s)${m.quick ? ', quick' : ''}; ${m.date ?? ''}`)}</text>`,
);
// Grid.
for (const v of [0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64].filter((v) => v >= lo && v <= hi)) {
  const gx = x(v).toFixed(1);
  parts.push(`<line x1="${gx}" y1="${top - 8}" x2="${gx}" y2="${H - 30}" stroke="${v === 1 ? '#111' : '#e5e7eb'}" ${v === 1 ? 'stroke-dasharray="4 3"' : ''}/>`);
  parts.push(`<text x="${gx}" y="${H - 16}" text-anchor="middle" fill="#555">${v}×</text>`);
}
// Legend.
// Two rows: the three comparisons, then the node:net floor and the target mark.
PAIRS.forEach((p, i) => {
  const lx = left + (i % 3) * 165;
  const ly = top - 36 + Math.floor(i / 3) * 16;
  parts.push(`<rect x="${lx}" y="${ly}" width="12" height="10" fill="${p.color}"/><text x="${lx + 16}" y="${ly + 9}">${esc(p.label)}</text>`);
});
parts.push(`<text x="${left + 2 * 165}" y="${top - 11}" fill="#b91c1c">| target</text>`);
groups.forEach((g, gi) => {
  const gy = top + gi * groupH;
  parts.push(`<text x="${left - 10}" y="${gy + (PAIRS.length * (barH + 3)) / 2 + 4}" text-anchor="end">${esc(g.title)}</text>`);
  g.bars.forEach((b, bi) => {
    const by = gy + bi * (barH + 3);
    if (b.v === null) {
      if (b.a === 'floor') return; // the floor runs in a few scenarios only
      parts.push(`<text x="${left + 4}" y="${by + barH - 3}" fill="#999">${esc(b.label)}: no data</text>`);
      return;
    }
    const x0 = x(Math.max(lo, Math.min(1, b.v)));
    const x1 = x(Math.min(hi, Math.max(1, b.v)));
    parts.push(`<rect x="${x0.toFixed(1)}" y="${by}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${barH}" fill="${b.color}"/>`);
    parts.push(`<text x="${(b.v >= 1 ? x1 + 4 : x0 - 4).toFixed(1)}" y="${by + barH - 3}" text-anchor="${b.v >= 1 ? 'start' : 'end'}">${b.v.toFixed(2)}×</text>`);
    if (b.target !== null) {
      const tx = x(b.target).toFixed(1);
      parts.push(`<line x1="${tx}" y1="${by - 1}" x2="${tx}" y2="${by + barH + 1}" stroke="#b91c1c" stroke-width="2"/>`);
    }
  });
});
parts.push('</svg>');
writeFileSync(out, `${parts.join('\n')}\n`);
console.log(`wrote ${path.relative(process.cwd(), out)} from ${path.relative(process.cwd(), file)}`);
