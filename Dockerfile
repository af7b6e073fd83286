# syntax=docker/dockerfile:1
# Sluice image: replaces the seed's toluaina1/pgsync container (see docker-compose.yml).
#   docker build -t sluice .
#   docker run --env-file .env -v "$PWD/config:/app/config:ro" -v "$PWD/data/sluice:/app/data" sluice
# Checked by test/unit/deploy/deploy-files.test.ts (no Docker engine in CI).

# ---- build: compile TypeScript, then drop dev dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# ---- runtime: compiled code + production node_modules, non-root ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
# File checkpoints (SLUICE_CHECKPOINT_STORE=file) and the default dead-letter file
# (<CHECKPOINT_PATH>/sluice-dead-letters.jsonl) live here: mount a volume on it.
ENV CHECKPOINT_PATH=/app/data
WORKDIR /app
# Code stays owned by root (read-only for the process); only data/ and logs/ are writable by `node` (uid 1000).
# A host directory bind-mounted on /app/data must be writable by uid 1000: chown 1000 data/sluice logs/sluice
RUN mkdir -p /app/data /app/logs /app/config && chown node:node /app/data /app/logs
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
USER node
VOLUME ["/app/data"]
# /healthz, /readyz, /metrics, /status (SLUICE_HTTP_PORT, default 8080)
EXPOSE 8080
# Slim images have no curl: a node script probes /healthz on SLUICE_HTTP_PORT, over HTTPS when SLUICE_HTTP_TLS_CERT
# is set (SLUICE_HTTP_PORT=0, "any free port", cannot be probed: keep a fixed port in containers).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "bin/healthcheck.js"]
# Sluice handles SIGTERM itself (finishes the batch in hand, stores the checkpoint, exits 0).
CMD ["node", "bin/sluice.js", "run"]
