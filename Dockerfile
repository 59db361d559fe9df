# syntax=docker/dockerfile:1
# Lifeline's image: built JavaScript on Node 24 LTS, production dependencies only, run by an
# unprivileged user under tini. The root filesystem can be read-only: Lifeline writes only to
# /var/lib/lifeline (state stores, file-drop inbox: mount a volume) and /tmp (mount a tmpfs).
#   docker build -t lifeline:dev --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --read-only --tmpfs /tmp -v lifeline-state:/var/lib/lifeline lifeline:dev run --only charge_dedup
# The Node version is .nvmrc's (tests/deploy/deploy.unit.test.ts keeps them equal).
ARG NODE_VERSION=24.22.3

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# patch-package (postinstall) applies patches/ to kafkajs: linear message grouping (see patches/README.md).
COPY patches patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY deploy/versions.json deploy/versions.json
COPY src src
COPY connectors connectors
COPY processors processors
COPY dev dev
COPY schemas schemas
COPY console console
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="lifeline" \
      org.opencontainers.image.description="Kafka integration backbone for Odoo in healthcare" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="UNLICENSED" \
      org.opencontainers.image.documentation="docs/operations.md"
# tini reaps children and forwards SIGTERM, so `docker stop` gets Lifeline's graceful stop (< 5 s).
# Debian's security updates arrive by rebuilding the image, hence no version pin.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    LIFELINE_FROM_DIST=1 \
    LIFELINE_STATE_DIR=/var/lib/lifeline/state \
    LIFELINE_INBOX_DIR=/var/lib/lifeline/inbox \
    LIFELINE_HTTP_PORT=9464 \
    LIFELINE_WEBHOOK_PORT=8088
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin/lifeline.mjs bin/node-version.mjs ./bin/
COPY schemas ./schemas
COPY topology.yaml ./topology.yaml
RUN mkdir -p /var/lib/lifeline/state /var/lib/lifeline/inbox \
 && chown -R node:node /var/lib/lifeline
VOLUME ["/var/lib/lifeline"]
# The image's files belong to root and cannot be changed by the user Lifeline runs as.
USER node
EXPOSE 9464 8088
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.LIFELINE_HTTP_PORT}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/lifeline.mjs"]
CMD ["run", "--topology", "/app/topology.yaml"]
