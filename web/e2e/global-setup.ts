import { startGateway } from "./backend";

export default async function globalSetup(): Promise<void> {
  await startGateway();
}
