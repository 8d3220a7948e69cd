// Shared context for SDK scenarios: the SDK configured for the live server, a few
// assertions, and state that checks hand to later checks (t.state).
import assert from "node:assert/strict";
import { configure } from "@trigger.dev/sdk";

export function makeContext() {
  const baseURL = required("RUNWATCH_API_URL");
  const accessToken = required("RUNWATCH_API_KEY");
  configure({ baseURL, accessToken });
  return {
    baseURL,
    accessToken,
    otherKey: process.env.RUNWATCH_OTHER_API_KEY,
    tasks: JSON.parse(process.env.RUNWATCH_SDK_TASKS ?? "[]"),
    state: {},
    assert,
    // Raw HTTP with the same key, for what the SDK has no helper for.
    async http(method, path, body, key = accessToken) {
      const response = await fetch(`${baseURL}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${key}`,
          "Content-Type": "application/json",
          "x-trigger-api-version": "2025-07-16",
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
    },
    // Expect `promise` to reject with an SDK error of `status`.
    async rejects(promise, status) {
      try {
        await promise;
      } catch (error) {
        assert.equal(error.status, status, `expected HTTP ${status}, got ${error.status}: ${error.message}`);
        return error;
      }
      assert.fail(`expected HTTP ${status}, but the call succeeded`);
    },
    near(actual, expected, toleranceMs, what) {
      const delta = Math.abs(new Date(actual).getTime() - new Date(expected).getTime());
      assert.ok(delta <= toleranceMs, `${what}: ${actual} is ${delta} ms from ${expected}`);
    },
  };
}

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}
