import { readFileSync } from "node:fs";
import path from "node:path";
import { WEBHOOK_EVENT_TYPES } from "./webhook-events";

it("offers exactly the team and public event types", () => {
  // The API does not list them. The gateway's push map names every team and
  // public topic (tests/gateway/test_live_authorisation.py holds it equal to the
  // catalog), which are exactly the topics an endpoint may subscribe to.
  const push = readFileSync(path.join(__dirname, "..", "..", "..", "gateway", "push.py"), "utf8");
  const map = push.slice(push.indexOf("PUSH_PERMISSIONS: Mapping[str, str] = {"));
  const topics = [...map.slice(0, map.indexOf("\n}")).matchAll(/^ {4}"([a-z_.]+)": "[a-z:]+",$/gm)].map((m) => m[1]);
  expect(topics.length).toBeGreaterThan(10);
  expect([...WEBHOOK_EVENT_TYPES]).toEqual([...topics].sort());
});
