// The API issue's acceptance list, driven through the official SDK.
// Tasks deployed by test_sdk.py: t.tasks = ["sdk-echo", "sdk-other", "sdk-big"].
import { apiClientManager } from "@trigger.dev/core/v3";
import { auth, batch, idempotencyKeys, runs, tasks } from "@trigger.dev/sdk";

const HOUR = 3600_000;

export const checks = {
  async "tasks.trigger with tags, metadata, delay and an idempotency key"(t) {
    const key = await idempotencyKeys.create("sdk-order-42", { scope: "global" });
    const payload = { order: 42, items: ["a", "b"], nested: { ok: true } };
    const handle = await tasks.trigger("sdk-echo", payload, {
      tags: ["sdk", "order_42"],
      metadata: { source: "sdk-test" },
      delay: "1h",
      idempotencyKey: key,
      machine: "small-2x",
      maxAttempts: 4,
    });
    t.assert.match(handle.id, /^run_[a-z0-9]+$/);
    t.assert.equal(typeof handle.publicAccessToken, "string");
    const run = await runs.retrieve(handle.id);
    t.assert.equal(run.status, "DELAYED");
    t.assert.equal(run.isQueued, true);
    t.assert.deepEqual(run.tags, ["order_42", "sdk"]);
    t.assert.deepEqual(run.metadata, { source: "sdk-test" });
    t.assert.deepEqual(run.payload, payload);
    t.assert.equal(run.idempotencyKey, "sdk-order-42");
    t.assert.equal(run.taskIdentifier, "sdk-echo");
    t.assert.equal(run.triggerFunction, "trigger");
    t.near(run.delayedUntil, Date.now() + HOUR, 60_000, "delayedUntil");
    t.assert.ok(run.createdAt instanceof Date);
    t.state.delayed = handle.id;
    t.state.key = key;
  },

  async "a repeated trigger with the same idempotency key returns the cached run"(t) {
    const again = await tasks.trigger("sdk-echo", { order: 43 }, { idempotencyKey: t.state.key });
    t.assert.equal(again.id, t.state.delayed);
    const raw = await t.http("POST", "/api/v1/tasks/sdk-echo/trigger", {
      payload: {},
      options: { idempotencyKey: t.state.key },
    });
    t.assert.equal(raw.body.isCached, true);
    t.assert.equal(raw.body.id, t.state.delayed);
  },

  async "the run's public access token reads that run and nothing else"(t) {
    const handle = await tasks.trigger("sdk-other", { n: 1 });
    const token = await auth.createPublicToken({ scopes: { read: { runs: [handle.id] } } });
    await auth.withAuth({ accessToken: token }, async () => {
      const run = await runs.retrieve(handle.id);
      t.assert.equal(run.id, handle.id);
      await t.rejects(runs.retrieve(t.state.delayed), 403);
    });
    await auth.withAuth({ accessToken: handle.publicAccessToken }, async () => {
      t.assert.equal((await runs.retrieve(handle.id)).id, handle.id);
    });
  },

  async "runs.reschedule moves the delayed run"(t) {
    const run = await runs.reschedule(t.state.delayed, { delay: "2h" });
    t.assert.equal(run.id, t.state.delayed);
    t.assert.equal(run.status, "DELAYED");
    t.near(run.delayedUntil, Date.now() + 2 * HOUR, 60_000, "rescheduled delayedUntil");
    const at = new Date(Date.now() + 3 * HOUR);
    const byDate = await runs.reschedule(t.state.delayed, { delay: at });
    t.near(byDate.delayedUntil, at, 1000, "delayedUntil from a Date");
  },

  async "metadata PUT replaces and applies operations, GET reads it back"(t) {
    const client = apiClientManager.clientOrThrow();
    const replaced = await client.updateRunMetadata(t.state.delayed, { metadata: { progress: 0.5 } });
    t.assert.deepEqual(replaced.metadata, { progress: 0.5 });
    const operated = await client.updateRunMetadata(t.state.delayed, {
      operations: [
        { type: "increment", key: "count", value: 3 },
        { type: "append", key: "log", value: "step-1" },
        { type: "set", key: "$.stage.name", value: "load" },
      ],
    });
    t.assert.deepEqual(operated.metadata, {
      progress: 0.5,
      count: 3,
      log: ["step-1"],
      stage: { name: "load" },
    });
    const read = await client.getRunMetadata(t.state.delayed);
    t.assert.deepEqual(read.metadata, operated.metadata);
    t.assert.deepEqual((await runs.retrieve(t.state.delayed)).metadata, operated.metadata);
    const tooBig = await t.http("PUT", `/api/v1/runs/${t.state.delayed}/metadata`, {
      metadata: { blob: "x".repeat(262_144) },
    });
    t.assert.equal(tooBig.status, 413);
  },

  async "runs.cancel cancels, and is a no-op the second time"(t) {
    const result = await runs.cancel(t.state.delayed);
    t.assert.equal(result.id, t.state.delayed);
    const run = await runs.retrieve(t.state.delayed);
    t.assert.equal(run.status, "CANCELED");
    t.assert.equal(run.isCancelled, true);
    t.assert.equal(run.isCompleted, true);
    t.assert.ok(run.finishedAt instanceof Date);
    t.assert.equal((await runs.cancel(t.state.delayed)).id, t.state.delayed);
    const polled = await runs.poll(t.state.delayed, { pollIntervalMs: 100 });
    t.assert.equal(polled.status, "CANCELED");
  },

  async "runs.replay copies the run; with an edited payload it uses that"(t) {
    const plain = await runs.replay(t.state.delayed);
    t.assert.notEqual(plain.id, t.state.delayed);
    const copy = await runs.retrieve(plain.id);
    t.assert.deepEqual(copy.payload, { order: 42, items: ["a", "b"], nested: { ok: true } });
    t.assert.deepEqual(copy.tags, ["order_42", "sdk"]);
    t.assert.deepEqual(copy.metadata, { source: "sdk-test" }); // seed metadata, not the edited one
    t.assert.equal(copy.status, "QUEUED");
    const edited = await runs.replay(t.state.delayed, {
      payload: { order: 99, at: new Date("2024-06-25T15:45:26.123Z") },
      tags: ["replayed"],
    });
    const changed = await runs.retrieve(edited.id);
    t.assert.deepEqual(changed.payload, { order: 99, at: "2024-06-25T15:45:26.123Z" });
    t.assert.deepEqual(changed.tags, ["replayed"]);
  },

  async "batch.trigger of 50 items, then batch.retrieve"(t) {
    const items = Array.from({ length: 50 }, (_, i) => ({
      id: i % 2 ? "sdk-echo" : "sdk-other",
      payload: { i },
      options: { tags: ["sdk-batch"] },
    }));
    const result = await batch.trigger(items);
    t.assert.match(result.batchId, /^batch_/);
    t.assert.equal(result.runCount, 50);
    t.assert.equal(typeof result.publicAccessToken, "string");
    const retrieved = await batch.retrieve(result.batchId);
    t.assert.equal(retrieved.id, result.batchId);
    t.assert.equal(retrieved.runCount, 50);
    t.assert.equal(retrieved.runs.length, 50);
    t.assert.equal(new Set(retrieved.runs).size, 50);
    t.assert.deepEqual(retrieved.processing.errors, []);
    const first = await runs.retrieve(retrieved.runs[0]);
    t.assert.equal(first.batchId, result.batchId);
    t.assert.equal(first.triggerFunction, "batchTrigger");
    t.assert.deepEqual(first.payload, { i: 0 });
    t.state.batchId = result.batchId;
    t.state.batchRuns = retrieved.runs;
  },

  async "tasks.batchTrigger by task"(t) {
    const result = await tasks.batchTrigger("sdk-echo", [{ payload: { n: 1 } }, { payload: { n: 2 } }]);
    t.assert.equal(result.runCount, 2);
    const retrieved = await batch.retrieve(result.batchId);
    t.assert.equal(retrieved.runs.length, 2);
  },

  async "runs.list with filters and auto-pagination"(t) {
    const seen = [];
    for await (const run of runs.list({ tag: "sdk-batch", limit: 7 })) {
      seen.push(run.id);
      t.assert.equal(run.env.name, "dev");
      t.assert.ok(run.tags.includes("sdk-batch"));
    }
    t.assert.equal(seen.length, 50);
    t.assert.deepEqual(new Set(seen), new Set(t.state.batchRuns));
    const page = await runs.list({ taskIdentifier: "sdk-echo", tag: "sdk-batch", status: ["QUEUED"], limit: 100 });
    t.assert.equal(page.data.length, 25);
    t.assert.ok(page.data.every((r) => r.taskIdentifier === "sdk-echo" && r.status === "QUEUED"));
    const canceled = await runs.list({ status: "CANCELED", from: new Date(Date.now() - HOUR) });
    t.assert.deepEqual(canceled.data.map((r) => r.id), [t.state.delayed]);
    const inBatch = await runs.list({ batch: t.state.batchId, limit: 100 });
    t.assert.equal(inBatch.data.length, 50);
    const none = await runs.list({ isTest: true, period: "1h" });
    t.assert.equal(none.data.length, 0);
    // manual paging, forward then back
    const first = await runs.list({ tag: "sdk-batch", limit: 20 });
    t.assert.ok(first.hasNextPage());
    const second = await first.getNextPage();
    t.assert.equal(second.data.length, 20);
    const back = await second.getPreviousPage();
    t.assert.deepEqual(back.data.map((r) => r.id), first.data.map((r) => r.id));
  },

  async "a payload over 200 KB goes through the packet offload path"(t) {
    const blob = "x".repeat(210_000);
    const handle = await tasks.trigger("sdk-big", { blob, at: new Date("2025-01-01T00:00:00.000Z") });
    const raw = await t.http("GET", `/api/v3/runs/${handle.id}`);
    t.assert.equal(raw.body.payload, undefined);
    t.assert.match(raw.body.payloadPresignedUrl, /\/api\/packets\//);
    const run = await runs.retrieve(handle.id);
    t.assert.equal(run.payload.blob.length, 210_000);
    t.assert.ok(run.payload.at instanceof Date, "superjson types survive the offload");
    const replayed = await runs.retrieve((await runs.replay(handle.id)).id);
    t.assert.equal(replayed.payload.blob, blob);
  },

  async "idempotencyKeys.reset lets the key trigger a new run"(t) {
    const key = await idempotencyKeys.create("sdk-reset-me", { scope: "global" });
    const first = await tasks.trigger("sdk-other", {}, { idempotencyKey: key });
    await idempotencyKeys.reset("sdk-other", key);
    const second = await tasks.trigger("sdk-other", {}, { idempotencyKey: key });
    t.assert.notEqual(second.id, first.id);
  },

  async "errors arrive as the SDK's error classes without retry delays"(t) {
    const started = Date.now();
    const missing = await t.rejects(runs.retrieve("run_doesnotexist0000000000"), 404);
    t.assert.match(missing.message, /Run not found/);
    t.assert.ok(Date.now() - started < 2000, "404 must not be retried");
    const tooMany = await t.rejects(
      tasks.trigger("sdk-echo", {}, { tags: Array.from({ length: 11 }, (_, i) => `t${i}`) }),
      422,
    );
    t.assert.match(tooMany.message, /Runs can only have 10 tags/);
    await t.rejects(runs.reschedule(t.state.batchRuns[0], { delay: "1h" }), 400);
    await auth.withAuth({ accessToken: "tr_dev_notarealkeynotarealkey" }, () =>
      t.rejects(runs.list(), 401),
    );
  },

  async "another environment's key cannot see these runs"(t) {
    if (!t.otherKey) return;
    const other = await t.http("GET", `/api/v3/runs/${t.state.batchRuns[0]}`, undefined, t.otherKey);
    t.assert.equal(other.status, 404);
    await auth.withAuth({ accessToken: t.otherKey }, async () => {
      const page = await runs.list({ tag: "sdk-batch" });
      t.assert.equal(page.data.length, 0);
      await t.rejects(runs.cancel(t.state.batchRuns[0]), 404);
    });
  },
};
