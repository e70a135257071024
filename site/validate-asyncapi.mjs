// Validates an AsyncAPI document with the official parser (@asyncapi/parser):
//   node validate-asyncapi.mjs <file.json>
// Prints every diagnostic; exits 1 when any is an error or a warning.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const file = process.argv[2];
if (!file) {
  console.error('usage: node validate-asyncapi.mjs <file.json>');
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, 'utf8'));
const severities = ['error', 'warning', 'info', 'hint'];
for (const d of diagnostics) {
  console.log(`${severities[d.severity]} ${d.code} at ${d.path.join('.')}: ${d.message}`);
}
const failing = diagnostics.filter((d) => d.severity <= 1);
if (!document || failing.length > 0) {
  process.exit(1);
}
console.log(
  `valid: AsyncAPI ${document.version()}, ${document.channels().length} channels, ` +
    `${document.operations().length} operations, ${document.messages().length} messages`,
);
