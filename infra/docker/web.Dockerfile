# The web app (web/): Next.js standalone output on Node 20, as a non-root user.
# Build from the repository root:
#   docker build -f infra/docker/web.Dockerfile --build-arg HAUNTED_GATEWAY_URL=http://gateway:8000 .
# The browser reaches /graphql, /socket.io, /webhooks and /billing through this
# server, which proxies them to HAUNTED_GATEWAY_URL. Next.js writes those
# rewrites into the build, so the gateway's address is a build argument.
FROM node:20-slim AS build
WORKDIR /web
ENV NEXT_TELEMETRY_DISABLED=1 \
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
ARG HAUNTED_GATEWAY_URL=http://gateway:8000
RUN HAUNTED_GATEWAY_URL="$HAUNTED_GATEWAY_URL" npm run build

FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    HOSTNAME=0.0.0.0 \
    PORT=3000
ARG HAUNTED_GATEWAY_URL=http://gateway:8000
# Route handlers (the refresh-token cookie) call the gateway at run time too.
ENV HAUNTED_GATEWAY_URL=$HAUNTED_GATEWAY_URL
RUN useradd --system --uid 10002 --no-create-home --home-dir /app web
# server.js with its traced node_modules, and the static assets beside it.
COPY --from=build --chown=web:web /web/.next/standalone ./
USER web
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
    CMD node -e "fetch('http://127.0.0.1:3000/login').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "server.js"]
