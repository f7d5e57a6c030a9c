// Draws the README's diagrams from the descriptions below into docs/ as SVG, with no drawing tool:
// `npm run docs` writes them, `node scripts/diagrams.mjs --check` fails when a file in docs/ differs
// from what the description draws (test/diagrams.test.ts runs it, so a diagram cannot go stale).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * A sequence diagram: `participants` left to right, then `steps` top to bottom, each an arrow
 * `{ from, to, label, reply? }` (a reply is dashed), a note `{ over, text }` beside a lifeline, or a
 * frame `{ frame, steps }` around steps that happen only in the case it names.
 */
const endToEnd = {
  title: 'End-to-end delivery: until: subscriber',
  participants: [
    { id: 'out', name: 'durable mqtt out', detail: 'its outbox on disk' },
    { id: 'broker', name: 'MQTT broker', detail: 'embedded or any' },
    { id: 'in', name: 'durable mqtt in', detail: 'ack: complete' },
    { id: 'flow', name: 'consuming flow', detail: 'the nodes after it' },
  ],
  steps: [
    { over: 'out', text: 'written to the outbox' },
    { from: 'out', to: 'broker', label: 'PUBLISH (id, reply address)' },
    { from: 'broker', to: 'out', label: 'PUBACK', reply: true },
    { from: 'broker', to: 'in', label: 'PUBLISH' },
    { from: 'in', to: 'flow', label: 'msg: the flow runs' },
    { from: 'flow', to: 'in', label: 'done (or an error)', reply: true },
    { from: 'in', to: 'broker', label: 'receipt PUBLISH (id, by, ok)' },
    { from: 'broker', to: 'out', label: 'receipt' },
    { over: 'out', text: 'removed from the outbox; msg.delivery: delivered' },
    {
      frame: 'no receipt within receiptTimeout, or a negative one',
      steps: [
        { from: 'out', to: 'broker', label: 'PUBLISH again (same id)' },
        { over: 'out', text: 'the next wait doubles, up to 16×' },
      ],
    },
    {
      frame: 'the flow failed with it maxDeliveries times',
      steps: [
        { from: 'broker', to: 'in', label: 'PUBLISH (same id)' },
        { over: 'in', text: 'quarantined: 2nd output, not the flow' },
        { from: 'in', to: 'broker', label: 'final negative receipt' },
        { from: 'broker', to: 'out', label: 'receipt' },
        { over: 'out', text: 'removed from the outbox; msg.delivery: rejected' },
      ],
    },
  ],
};

export const DIAGRAMS = [{ file: 'docs/end-to-end.svg', description: endToEnd }];

const COLUMN = 240;
const MARGIN = 24;
const HEAD_HEIGHT = 46;
const HEAD_WIDTH = 176;
const ROW = 38;
const NOTE_HEIGHT = 26;
/** Roughly the width of one character of the 12 px sans-serif font, to size notes. */
const CHARACTER_WIDTH = 6.6;
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

function escape(text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The SVG of a sequence diagram, the same bytes for the same description. */
export function renderSequence({ title, participants, steps }) {
  const x = new Map(participants.map((p, index) => [p.id, MARGIN + HEAD_WIDTH / 2 + index * COLUMN]));
  const width = MARGIN * 2 + HEAD_WIDTH + (participants.length - 1) * COLUMN;
  const top = MARGIN + 28;
  let y = top + HEAD_HEIGHT + 22;
  const column = (id) => {
    if (!x.has(id)) throw new Error(`no participant ${id}`);
    return x.get(id);
  };
  /** The elements of a step, drawn from `y` down; moves `y` below them. */
  const draw = (step, depth) => {
    if ('frame' in step) {
      const start = y;
      y += 26;
      const inner = step.steps.flatMap((each) => draw(each, depth + 1));
      const left = MARGIN - 8 + depth * 6;
      const frame = [
        `<rect x="${left}" y="${start}" width="${width - 2 * left}" height="${y - start + 4}" fill="#e8e8e8" fill-opacity="0.45" stroke="#888" stroke-dasharray="4 3"/>`,
        `<text x="${left + 8}" y="${start + 17}" ${FONT} font-size="12" font-style="italic" fill="#444">${escape(step.frame)}</text>`,
      ];
      y += 14;
      return [...frame, ...inner];
    }
    if ('over' in step) {
      const left = Math.max(MARGIN - 4, column(step.over) - 12);
      const noteWidth = Math.ceil(step.text.length * CHARACTER_WIDTH) + 16;
      const note = [
        `<rect x="${left}" y="${y}" width="${noteWidth}" height="${NOTE_HEIGHT}" rx="3" fill="#fff8c4" stroke="#c8b560"/>`,
        `<text x="${left + 8}" y="${y + 17}" ${FONT} font-size="12" fill="#333">${escape(step.text)}</text>`,
      ];
      y += NOTE_HEIGHT + 12;
      return note;
    }
    const from = column(step.from);
    const to = column(step.to);
    const lineY = y + 18;
    const end = to + (to > from ? -2 : 2);
    y += ROW;
    return [
      `<line x1="${from}" y1="${lineY}" x2="${end}" y2="${lineY}" stroke="#333" stroke-width="1.4"${step.reply ? ' stroke-dasharray="5 4"' : ''} marker-end="url(#arrow)"/>`,
      `<text x="${(from + to) / 2}" y="${lineY - 6}" ${FONT} font-size="12" text-anchor="middle" fill="#111">${escape(step.label)}</text>`,
    ];
  };
  const body = steps.flatMap((step) => draw(step, 0));
  const bottom = y + 8;
  const height = bottom + MARGIN;
  const heads = participants.flatMap((p) => {
    const center = x.get(p.id);
    return [
      `<line x1="${center}" y1="${top + HEAD_HEIGHT}" x2="${center}" y2="${bottom}" stroke="#999" stroke-dasharray="2 3"/>`,
      `<rect x="${center - HEAD_WIDTH / 2}" y="${top}" width="${HEAD_WIDTH}" height="${HEAD_HEIGHT}" rx="5" fill="#9fd4c8" stroke="#4f8f80"/>`,
      `<text x="${center}" y="${top + 20}" ${FONT} font-size="13" font-weight="bold" text-anchor="middle" fill="#111">${escape(p.name)}</text>`,
      `<text x="${center}" y="${top + 37}" ${FONT} font-size="11" text-anchor="middle" fill="#333">${escape(p.detail)}</text>`,
    ];
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escape(title)}">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${MARGIN}" y="${MARGIN + 8}" ${FONT} font-size="15" font-weight="bold" fill="#111">${escape(title)}</text>`,
    ...heads,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const { file, description } of DIAGRAMS) {
    const target = path.join(root, file);
    const svg = renderSequence(description);
    if (!check) {
      writeFileSync(target, svg);
      console.log(`wrote ${file}`);
      continue;
    }
    let current = '';
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      // A missing file differs from any drawing.
    }
    if (current !== svg) {
      stale++;
      console.error(`${file} differs from what scripts/diagrams.mjs draws: run npm run docs`);
    }
  }
  process.exit(stale > 0 ? 1 : 0);
}
