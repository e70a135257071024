// Prints `count` distinct free TCP ports on 127.0.0.1, space separated (all
// held open at once, so none repeats).
import { createServer } from "node:net";

const count = Number(process.argv[2] ?? 1);
const servers = await Promise.all(
  Array.from({ length: count }, () =>
    new Promise((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve(server));
    }),
  ),
);
const ports = servers.map((server) => server.address().port);
await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
console.log(ports.join(" "));
