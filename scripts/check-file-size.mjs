// Fails when a file under nodes/ is longer than a reader takes in at one sitting: the architecture's
// rule that a file does one job. Run by `npm test`.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MAX_LINES = 400;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const tooLong = readdirSync(path.join(root, 'nodes'), { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile())
  .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
  .map((file) => ({ file, lines: readFileSync(path.join(root, file), 'utf8').split('\n').length - 1 }))
  .filter(({ lines }) => lines > MAX_LINES);
for (const { file, lines } of tooLong) console.error(`${file}: ${lines} lines, more than ${MAX_LINES}`);
if (tooLong.length > 0) process.exit(1);
console.log(`every file under nodes/ has at most ${MAX_LINES} lines`);
