/**
 * Summarises a .cpuprofile written by `npm run bench -- --profile`: the
 * functions with the most self time, and the share of each part of the stack
 * (this package, MQTT.js, mqtt-packet, Aedes, Node-RED, Node.js, the bench). Time in a
 * helper library (debug, rfdc, …) is charged to the part of the stack that called it.
 *
 *   node --import tsx bench/profile-summary.ts bench/results/profiles/<job>.cpuprofile [--top 15]
 */
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(__dirname, '..');

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

export const CATEGORIES = [
  'ours',
  'MQTT.js',
  'mqtt-packet',
  'Aedes',
  'Node-RED',
  'Node.js',
  'V8 (gc, idle, program)',
  'bench harness',
  'other',
] as const;
export type Category = (typeof CATEGORIES)[number];

function filePath(url: string): string {
  if (!url) return '';
  return url.startsWith('file://') ? fileURLToPath(url) : url;
}

export function categorise(url: string, functionName: string): Category {
  const file = filePath(url);
  if (!file) return functionName.startsWith('(') ? 'V8 (gc, idle, program)' : 'Node.js';
  if (file.startsWith('node:')) return 'Node.js';
  if (/node_modules\/(mqtt-packet|bl|readable-stream)\//.test(file)) return 'mqtt-packet';
  if (/node_modules\/mqtt\//.test(file)) return 'MQTT.js';
  if (
    /node_modules\/(aedes[^/]*|mqemitter[^/]*|qlobber[^/]*|hyperid|reusify|fastfall|fastparallel|fastseries|retimer)\//.test(
      file,
    )
  )
    return 'Aedes';
  if (/node_modules\/(@node-red|node-red)\//.test(file)) return 'Node-RED';
  if (file.startsWith(path.join(ROOT, 'dist')) || file.startsWith(path.join(ROOT, 'nodes'))) return 'ours';
  if (file.startsWith(path.join(ROOT, 'bench'))) return 'bench harness';
  return 'other';
}

const sourceMaps = new Map<string, SourceMap | undefined>();
let mapDir: string | undefined;

/**
 * Where the source map of a dist/ file is: beside it when the build writes maps, else
 * in a temporary directory where tsc compiles the same sources, with maps, once.
 */
function mapFileOf(file: string): string {
  if (existsSync(`${file}.map`)) return `${file}.map`;
  if (!mapDir) {
    mapDir = mkdtempSync(path.join(os.tmpdir(), 'durable-mqtt-maps-'));
    const tsc = require.resolve('typescript/bin/tsc');
    const args = [tsc, '-p', path.join(ROOT, 'tsconfig.json'), '--sourceMap', '--outDir', mapDir];
    execFileSync(process.execPath, args, { stdio: 'ignore' });
  }
  return path.join(mapDir, `${path.relative(path.join(ROOT, 'dist', 'nodes'), file)}.map`);
}

/** The TypeScript line of a line of dist/ (same sources, same compiler options: the same lines). */
function original(file: string, line: number, column: number): { file: string; line: number } | undefined {
  if (!sourceMaps.has(file)) {
    let map: SourceMap | undefined;
    try {
      map = new SourceMap(JSON.parse(readFileSync(mapFileOf(file), 'utf8')));
    } catch {
      map = undefined;
    }
    sourceMaps.set(file, map);
  }
  const entry = sourceMaps.get(file)?.findEntry(line, column) as
    { originalSource?: string; originalLine?: number } | undefined;
  if (!entry?.originalSource || entry.originalLine === undefined) return undefined;
  const source = entry.originalSource.startsWith('file://')
    ? fileURLToPath(entry.originalSource)
    : path.resolve(path.dirname(mapFileOf(file)), entry.originalSource);
  return { file: source, line: entry.originalLine + 1 };
}

function location(node: ProfileNode): string {
  const file = filePath(node.callFrame.url);
  if (!file) return '';
  const { lineNumber, columnNumber } = node.callFrame;
  const mapped = file.startsWith(path.join(ROOT, 'dist'))
    ? original(file, lineNumber, columnNumber)
    : undefined;
  const where = mapped ?? { file, line: lineNumber + 1 };
  const shown = where.file.startsWith(ROOT) ? path.relative(ROOT, where.file) : where.file;
  return `${shown}:${where.line}`;
}

export interface SummaryRow {
  name: string;
  where: string;
  category: Category;
  selfMs: number;
  percent: number;
}

/** Categories of code a helper library (debug, rfdc, …) is charged to: the caller that uses it. */
const OWNERS: ReadonlySet<Category> = new Set([
  'ours',
  'MQTT.js',
  'mqtt-packet',
  'Aedes',
  'Node-RED',
  'bench harness',
]);

export function summarise(profile: Profile): {
  totalMs: number;
  rows: SummaryRow[];
  byCategory: { category: Category; selfMs: number; percent: number }[];
} {
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const hits = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0) || 1;
  const perHit = totalMs / hits;
  const functions = new Map<string, SummaryRow>();
  const categories = new Map<Category, number>();
  const parents = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node);
  /** A helper library's time goes to the nearest caller in a known part of the stack. */
  const owner = (node: ProfileNode): Category => {
    for (let caller = parents.get(node.id); caller; caller = parents.get(caller.id)) {
      const category = categorise(caller.callFrame.url, caller.callFrame.functionName);
      if (OWNERS.has(category)) return category;
    }
    return 'other';
  };
  for (const node of profile.nodes) {
    if (!node.hitCount) continue;
    const name = node.callFrame.functionName || '(anonymous)';
    const where = location(node);
    let category = categorise(node.callFrame.url, name);
    if (category === 'other') category = owner(node);
    const key = `${category}|${name}@${where}`;
    const row = functions.get(key) ?? { name, where, category, selfMs: 0, percent: 0 };
    row.selfMs += node.hitCount * perHit;
    functions.set(key, row);
    categories.set(category, (categories.get(category) ?? 0) + node.hitCount * perHit);
  }
  const rows = [...functions.values()]
    .map((row) => ({ ...row, percent: (row.selfMs / totalMs) * 100 }))
    .sort((a, b) => b.selfMs - a.selfMs);
  const byCategory = CATEGORIES.filter((c) => categories.has(c))
    .map((category) => {
      const selfMs = categories.get(category) ?? 0;
      return { category, selfMs, percent: (selfMs / totalMs) * 100 };
    })
    .sort((a, b) => b.selfMs - a.selfMs);
  return { totalMs, rows, byCategory };
}

function main() {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '15' } },
    allowPositionals: true,
  });
  if (positionals.length === 0) {
    console.error('usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [--top N]');
    process.exit(1);
  }
  const top = Number(values.top) || 15;
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const { totalMs, rows, byCategory } = summarise(profile);
    console.log(`${file}: ${(totalMs / 1000).toFixed(2)} s profiled\n`);
    console.log('self time by part of the stack');
    for (const c of byCategory)
      console.log(
        `  ${c.category.padEnd(24)} ${c.selfMs.toFixed(0).padStart(7)} ms  ${c.percent.toFixed(1).padStart(5)} %`,
      );
    console.log(`\ntop ${top} functions by self time`);
    for (const row of rows.slice(0, top))
      console.log(
        `  ${row.percent.toFixed(1).padStart(5)} %  ${row.selfMs.toFixed(0).padStart(6)} ms  ${row.category.padEnd(13)} ${row.name}  ${row.where}`,
      );
    console.log('\nby part of the stack (its functions among the top 60)');
    for (const { category } of byCategory) {
      const mine = rows.slice(0, 60).filter((row) => row.category === category);
      if (mine.length === 0) continue;
      console.log(`  ${category}`);
      for (const row of mine.slice(0, 6))
        console.log(`    ${row.percent.toFixed(1).padStart(5)} %  ${row.name}  ${row.where}`);
    }
    console.log();
  }
  if (mapDir) rmSync(mapDir, { recursive: true, force: true });
}

if (require.main === module) main();
