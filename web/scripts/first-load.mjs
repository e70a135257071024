// First-load JavaScript per route, gzipped: the chunks each route loads, as
// the build lists them in .next/diagnostics/route-bundle-stats.json.
// Usage: node scripts/first-load.mjs [--route /app] [--max-kb 300]
import { readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  return index === -1 ? fallback : args[index + 1];
};
const checked = option("--route", "/app");
const maxKb = Number(option("--max-kb", "300"));
const root = path.resolve(import.meta.dirname, "..");

const stats = JSON.parse(readFileSync(path.join(root, ".next/diagnostics/route-bundle-stats.json"), "utf8"));
const sizes = new Map();
const gzipped = (chunk) => {
  if (!sizes.has(chunk)) sizes.set(chunk, gzipSync(readFileSync(path.join(root, chunk)), { level: 9 }).length);
  return sizes.get(chunk);
};

let checkedKb = null;
for (const { route, firstLoadChunkPaths } of stats.sort((a, b) => a.route.localeCompare(b.route))) {
  const kb = firstLoadChunkPaths.reduce((sum, chunk) => sum + gzipped(chunk), 0) / 1024;
  if (route === checked) checkedKb = kb;
  console.log(`${route.padEnd(28)} ${kb.toFixed(1).padStart(7)} KB gzip (${firstLoadChunkPaths.length} chunks)`);
}
if (checkedKb === null) {
  console.error(`no route ${checked} in the build's route stats`);
  process.exit(1);
}
if (checkedKb > maxKb) {
  console.error(`first-load JS of ${checked} is ${checkedKb.toFixed(1)} KB gzip, over ${maxKb} KB`);
  process.exit(1);
}
console.log(`first-load JS of ${checked}: ${checkedKb.toFixed(1)} KB gzip (limit ${maxKb} KB)`);
