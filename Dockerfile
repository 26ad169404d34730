# syntax=docker/dockerfile:1
#
# stateless-chat: a build stage (npm ci, npm run build) and a runtime stage (production
# dependencies, the compiled server, the chat page's files), running as the non-root `node` user.
#
#   docker build -t stateless-chat .
#   docker run -p 4000:4000 -e JWT_SECRET=... -e DATABASE_URL=postgresql://... stateless-chat
#
# See docs/deploy.md. This file's steps were checked by hand on a machine without a Docker
# daemon (docs/deploy.md, "How this image was checked"); the image itself was not built there.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# What `tsc -p .` compiles for the server: src/, migrations/ (compiled in: the ORM runs
# migrations/index.ts's list, never scans a folder) and mikro-orm.config.ts (bench/ is not shipped).
COPY tsconfig.json mikro-orm.config.ts ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
# `node` (Node.js 24.21.0 from the npm registry, about 190 MB) is a regular dependency, there so
# that `npm start` works on a machine whose own node is older. This image already has Node.js 24
# and starts `node` directly (node_modules/.bin is not on PATH), so it is removed in the same layer.
RUN npm ci --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/node node_modules/.bin/node \
 && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/migrations ./dist/migrations
# The chat page's files (GET /, served only when CHAT_PAGE=on in production); package.json above
# marks the package root that page.ts looks for; bin/ is the `stateless-chat` CLI wrapper.
COPY public ./public
COPY bin ./bin
# DATA_DIR: used only by the embedded PostgreSQL (no DATABASE_URL) and the dev JWT secret, neither
# of which a production deployment uses; writable by the server's user all the same.
RUN mkdir -p /data && chown node:node /data
USER node
# 4000: the API; 9464: GET /metrics when METRICS_PORT=9464 (in production /metrics needs a port of
# its own or METRICS_TOKEN).
EXPOSE 4000 9464
# /healthz answers while the process serves HTTP; readiness (/readyz, the database) is the
# orchestrator's business. No curl in the slim image: Node's fetch.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/main.js"]
