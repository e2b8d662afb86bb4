import { defineConfig } from "vitest/config";

// Integration tests run twice: once on SQLite files, once on PostgreSQL
// (one schema per test file). Unit tests run once.
const integration = ["src/**/*.integration.test.ts", "test/**/*.integration.test.ts"];
const pgUrl = process.env.GK_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      { test: { name: "unit", testTimeout: 30_000, include: ["src/**/*.test.ts", "test/**/*.test.ts"], exclude: [...integration, "**/node_modules/**"] } },
      { test: { name: "sqlite", include: integration, env: { GK_TEST_BACKEND: "sqlite" }, testTimeout: 60_000, hookTimeout: 60_000 } },
      { test: { name: "postgres", include: integration, env: { GK_TEST_BACKEND: "postgres", GK_TEST_POSTGRES_URL: pgUrl }, testTimeout: 60_000, hookTimeout: 60_000 } },
    ],
  },
});
