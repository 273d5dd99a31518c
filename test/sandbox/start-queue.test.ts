import { describe, expect, it } from "vitest";
import { createStartQueue, InvalidStartLimitError, releaseOnFirstStart, type Sandbox, type StartSlot } from "../../cell-agent/src/sandbox/index.js";

describe("the cell's start queue", () => {
  it("hands out at most its limit of slots and the rest in arrival order", async () => {
    const q = createStartQueue(2);
    const order: number[] = [];
    const slots = Array.from({ length: 5 }, (_, i) =>
      q.acquire().then((s) => {
        order.push(i);
        return s;
      }),
    );
    const first = await Promise.all([slots[0]!, slots[1]!]);
    expect(q.state()).toEqual({ starting: 2, queued: 3 });
    first[1]!.release();
    first[1]!.release(); // a second release gives back nothing more
    const third = await slots[2]!;
    expect(q.state()).toEqual({ starting: 2, queued: 2 });
    first[0]!.release();
    third.release();
    for (const s of await Promise.all(slots.slice(3))) s.release();
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(q.peak()).toBe(2);
    expect(q.state()).toEqual({ starting: 0, queued: 0 });
  });

  it("lets a waiter leave the queue when its signal aborts, without taking a slot", async () => {
    const q = createStartQueue(1);
    const held = await q.acquire();
    const abort = new AbortController();
    const leaving = q.acquire(abort.signal);
    const next = q.acquire();
    abort.abort(new Error("task cancelled"));
    await expect(leaving).rejects.toThrow("task cancelled");
    held.release();
    const s = await next;
    expect(q.state()).toEqual({ starting: 1, queued: 0 });
    s.release();
  });

  it("keeps a slot taken before the abort until it is released", async () => {
    const q = createStartQueue(1);
    const abort = new AbortController();
    const slot = await q.acquire(abort.signal);
    abort.abort();
    expect(q.state().starting).toBe(1);
    slot.release();
    expect(q.state().starting).toBe(0);
  });

  it("refuses a limit below 1", () => {
    expect(() => createStartQueue(0)).toThrow(InvalidStartLimitError);
  });

  it("gives the slot back when the sandbox's first process starts, not when it ends", async () => {
    const q = createStartQueue(1);
    const slot: StartSlot = await q.acquire();
    let finish!: () => void;
    const fake = {
      id: "c1",
      rootfsPath: "/nowhere",
      hostRootUid: 0,
      run: (_p, io) => {
        io.onStart?.();
        return new Promise((resolve) => (finish = () => resolve({ exitCode: 0, oomKilled: false })));
      },
      destroy: async () => undefined,
    } satisfies Sandbox;
    const wrapped = releaseOnFirstStart(fake, slot);
    const running = wrapped.run({ path: "/bin/sleep", args: ["1"], env: [] }, { stdout: () => undefined, stderr: () => undefined });
    expect(q.state().starting).toBe(0);
    finish();
    await expect(running).resolves.toEqual({ exitCode: 0, oomKilled: false });
    expect(wrapped.id).toBe("c1");
  });
});
