import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { WEBHOOK_EVENT_TYPES } from "./webhook-events";

it("offers exactly the team and public event types", () => {
  // The API does not list them. Each event's committed schema snapshot names its
  // audience (x-haunted-audience); the team and public topics are exactly the ones
  // an endpoint may subscribe to.
  const dir = path.join(__dirname, "..", "..", "..", "schemas", "snapshots");
  const audience = new Map<string, string>();
  for (const file of readdirSync(dir).filter((name) => name.endsWith(".json")).sort()) {
    const snapshot = JSON.parse(readFileSync(path.join(dir, file), "utf8")) as Record<string, unknown>;
    // An audience never changes between versions (schemas/snapshot.py refuses it).
    audience.set(String(snapshot["x-haunted-topic"]), String(snapshot["x-haunted-audience"]));
  }
  const topics = [...audience].filter(([, who]) => who === "team" || who === "public").map(([topic]) => topic);
  expect(topics.length).toBeGreaterThan(10);
  expect([...WEBHOOK_EVENT_TYPES]).toEqual(topics.sort());
});
