// Bulk actions (issue 7) through the official SDK: runs.bulk.cancel / replay /
// retrieve / poll / abort / list. test_sdk_bulk.py runs this file with a background
// processor standing in for a worker's scheduler; it leaves bulk actions whose name
// starts with "held" alone, so the abort check is not a race.
import { runs, tasks } from "@trigger.dev/sdk";

const POLL = { pollIntervalMs: 100 };

async function collect(listing) {
  const items = [];
  for await (const item of listing) items.push(item);
  return items;
}

export const checks = {
  async "runs.bulk.cancel by filter cancels the matching queued runs"(t) {
    const targets = [];
    for (let n = 0; n < 3; n++) targets.push((await tasks.trigger("sdk-other", { n })).id);
    const bystander = (await tasks.trigger("sdk-echo", { keep: true })).id;
    const created = await runs.bulk.cancel({
      filter: { taskIdentifier: "sdk-other", status: ["QUEUED"], period: "1h" },
      name: "stop sdk-other",
    });
    t.assert.match(created.id, /^bulk_[a-z0-9]+$/);
    const done = await runs.bulk.poll(created.id, POLL);
    t.assert.equal(done.id, created.id);
    t.assert.equal(done.name, "stop sdk-other");
    t.assert.equal(done.type, "CANCEL");
    t.assert.equal(done.status, "COMPLETED");
    t.assert.deepEqual(done.counts, { total: 3, success: 3, failure: 0 });
    t.assert.ok(done.createdAt instanceof Date && done.completedAt instanceof Date);
    t.assert.ok(done.completedAt >= done.createdAt);
    const touched = await collect(runs.list({ bulkAction: created.id }));
    t.assert.deepEqual(touched.map((r) => r.id).sort(), [...targets].sort());
    t.assert.ok(touched.every((r) => r.status === "CANCELED" && r.isCancelled));
    t.assert.equal((await runs.retrieve(bystander)).status, "QUEUED");
    t.state.canceled = targets;
    t.state.bystander = bystander;
  },

  async "runs.bulk.replay by run ids replays each run once"(t) {
    const created = await runs.bulk.replay({ runIds: t.state.canceled });
    const done = await runs.bulk.poll(created.id, POLL);
    t.assert.equal(done.type, "REPLAY");
    t.assert.equal(done.status, "COMPLETED");
    t.assert.deepEqual(done.counts, { total: 3, success: 3, failure: 0 });
    t.assert.equal(done.name, undefined);
    const touched = await collect(runs.list({ bulkAction: created.id }));
    const replays = touched.filter((r) => !t.state.canceled.includes(r.id));
    t.assert.equal(replays.length, 3);
    t.assert.ok(replays.every((r) => r.status === "QUEUED" && r.taskIdentifier === "sdk-other"));
  },

  async "finished runs are counted as failures of a cancel"(t) {
    const created = await runs.bulk.cancel({ runIds: [t.state.canceled[0], t.state.bystander] });
    const done = await runs.bulk.poll(created.id, POLL);
    t.assert.deepEqual(done.counts, { total: 2, success: 1, failure: 1 });
    t.assert.equal((await runs.retrieve(t.state.bystander)).status, "CANCELED");
  },

  async "runs.bulk.abort stops a pending bulk action; a second abort is 409"(t) {
    const queued = (await tasks.trigger("sdk-echo", { abort: true })).id;
    const created = await runs.bulk.cancel({ runIds: [queued], name: "held: to abort" });
    const pending = await runs.bulk.retrieve(created.id);
    t.assert.equal(pending.status, "PENDING");
    t.assert.deepEqual(pending.counts, { total: 1, success: 0, failure: 0 });
    t.assert.equal(pending.completedAt, undefined);
    t.assert.deepEqual(await runs.bulk.abort(created.id), { id: created.id });
    const aborted = await runs.bulk.poll(created.id, POLL);
    t.assert.equal(aborted.status, "ABORTED");
    t.assert.ok(aborted.completedAt instanceof Date);
    t.assert.equal((await runs.retrieve(queued)).status, "QUEUED");
    await t.rejects(runs.bulk.abort(created.id), 409);
  },

  async "runs.bulk.list pages through every bulk action, newest first"(t) {
    const first = await runs.bulk.list({ limit: 2 });
    t.assert.equal(first.data.length, 2);
    t.assert.ok(first.hasNextPage());
    const all = await collect(runs.bulk.list({ limit: 2 }));
    t.assert.equal(all.length, 4);
    t.assert.deepEqual(all.map((a) => a.type), ["CANCEL", "CANCEL", "REPLAY", "CANCEL"]);
    t.assert.equal(all[0].status, "ABORTED");
    t.assert.equal(all[3].name, "stop sdk-other");
    const times = all.map((a) => a.createdAt.getTime());
    t.assert.deepEqual([...times].sort((a, b) => b - a), times);
  },

  async "bad requests and other environments get clear errors"(t) {
    await t.rejects(runs.bulk.cancel({ filter: {} }), 400);
    await t.rejects(runs.bulk.replay({ filter: { status: "NOT_A_STATUS" } }), 400);
    await t.rejects(runs.bulk.cancel({ runIds: ["run_doesnotexist"] }), 400);
    await t.rejects(runs.bulk.retrieve("bulk_doesnotexist"), 404);
    const mine = (await runs.bulk.list({ limit: 1 })).data[0].id;
    const other = await t.http("GET", `/api/v1/bulk-actions/${mine}`, undefined, t.otherKey);
    t.assert.equal(other.status, 404);
    t.assert.deepEqual(other.body, { error: "Bulk action not found" });
  },
};
