import { teardown } from "./backend";

export default async function globalTeardown(): Promise<void> {
  await teardown();
}
