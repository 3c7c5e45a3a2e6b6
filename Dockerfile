# remediator: docker build -t remediator . && docker run -p 9095:9095 --env-file remediator.env remediator
# Two stages: the build stage has the dev dependencies (typescript) and compiles src/ to dist/;
# the image has only the production dependencies, the compiled code, the CLI and the shipped rules.
# test/integration/container.test.ts repeats these steps without docker.
# The Node.js major the tests run on (.ci/run, the development machines): the image runs what was
# tested. test/integration/container.test.ts fails when the two differ.
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY rules ./rules
# The image's `node` user, by uid so Kubernetes can check runAsNonRoot. Nothing is written at run
# time, so the root filesystem can be read-only.
USER 1000:1000
# 9095: webhooks, /healthz, /readyz, /metrics (receiver). 9096: /healthz and /metrics of a worker.
EXPOSE 9095 9096
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["node", "bin/healthcheck.js"]
# node itself is PID 1's child of nothing: SIGTERM from `docker stop` or the kubelet reaches it
# directly (no npm or sh in between), and it drains within SHUTDOWN_GRACE.
ENTRYPOINT ["node", "dist/main.js"]
