// A Socket.IO v4 client for the tests: connects with auth {token, since}, prints every
// event it receives as one JSON line, and obeys commands read from stdin:
//   disconnect  - closes the connection (the client keeps the last notification id)
//   connect     - connects again, with since = the last notification id received
//   exit        - closes and exits
// Usage: node client.mjs URL TOKEN [SINCE]
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, token, since] = process.argv.slice(2);
let last = since || undefined;

const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");

const socket = io(url, {
  transports: ["websocket"],
  // Called on every (re)connection: recovery resumes after what this client last got.
  auth: (send) => send(last ? { token, since: last } : { token }),
  reconnectionDelay: 100,
  reconnectionDelayMax: 500,
});

socket.onAny((event, data) => {
  if (event === "notification") last = data.id;
  print({ event, data });
});
socket.on("connect", () => print({ event: "connect" }));
socket.on("connect_error", (error) => print({ event: "connect_error", message: error.message }));
socket.on("disconnect", (reason) => print({ event: "disconnect", reason }));

createInterface({ input: process.stdin }).on("line", (command) => {
  if (command === "disconnect") socket.disconnect();
  else if (command === "connect") socket.connect();
  else if (command === "exit") {
    socket.close();
    process.exit(0);
  }
});
