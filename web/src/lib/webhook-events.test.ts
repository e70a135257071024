import { readFileSync } from "node:fs";
import path from "node:path";
import { WEBHOOK_EVENT_TYPES } from "./webhook-events";

it("offers exactly the catalogue's team and public event types", () => {
  // The catalogue's rows: | `type` | service | key | audience | data |
  const catalogue = readFileSync(path.join(__dirname, "..", "..", "..", "docs", "events.md"), "utf8");
  const deliverable = [...catalogue.matchAll(/^\| `([a-z_.]+)` \|[^|]*\|[^|]*\| (team|public) \|/gm)].map((m) => m[1]);
  expect(deliverable.length).toBeGreaterThan(10);
  expect([...WEBHOOK_EVENT_TYPES]).toEqual([...deliverable].sort());
});
