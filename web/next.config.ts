import type { NextConfig } from "next";

// Where the gateway listens. Rewrites are fixed at build time (next build
// writes them into the routes manifest), so the URL is read then; route
// handlers read HAUNTED_GATEWAY_URL again at run time.
const gateway = (process.env.HAUNTED_GATEWAY_URL ?? "http://127.0.0.1:8000").replace(/\/$/, "");

const nextConfig: NextConfig = {
  output: "standalone",
  poweredByHeader: false,
  // Socket.IO's path ends in a slash ("/socket.io/?EIO=4..."): redirecting it
  // would break the WebSocket upgrade, which cannot follow a redirect.
  skipTrailingSlashRedirect: true,
  turbopack: {
    rules: {
      "*.css": {
        loaders: ["@tailwindcss/turbopack"],
        as: "*.css",
      },
    },
  },
  // The browser talks to one origin: the public API is proxied to the gateway
  // (WebSocket upgrades for /graphql and /socket.io included).
  async rewrites() {
    return {
      beforeFiles: [
        { source: "/graphql", destination: `${gateway}/graphql` },
        { source: "/socket.io/", destination: `${gateway}/socket.io/` },
        { source: "/socket.io/:path*", destination: `${gateway}/socket.io/:path*` },
        { source: "/webhooks/:path*", destination: `${gateway}/webhooks/:path*` },
        { source: "/billing/:path*", destination: `${gateway}/billing/:path*` },
        { source: "/exports/:path*", destination: `${gateway}/exports/:path*` },
      ],
      afterFiles: [],
      fallback: [],
    };
  },
};

export default nextConfig;
