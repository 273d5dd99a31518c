import { chmod, chown, mkdir, readdir, rmdir } from "node:fs/promises";
import path from "node:path";
import { isCode } from "./errors.js";
import { hostHelper, MNT_DETACH, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID } from "./host-helper.js";
import { mountPointsUnder, unmountIfMounted } from "./mounts.js";

// runc and crun set a user-namespaced container up as its mapped root, which must be able to
// look up the rootfs path. The cell's data dir stays 0700 root, so each rootfs is also reachable
// through a gate: <runDir>/diego-<cellKey>/<id>/rootfs, a recursive clone of the rootfs mount.
// The cell's gate dir is 0700 root with a POSIX ACL entry granting search (x, not read) to the
// mapped root uid of each live container only; <id> is root:<its gid> 0710. No other host user,
// and no other container's ids, can pass.

export interface Gates {
  readonly dir: string;
  /** Creates the container's gate and attaches its rootfs there; resolves the path for the runtime. */
  open(id: string, hostRootUid: number, rootfs: string): Promise<string>;
  /** Detaches and removes a gate (no-op when not open); never follows anything a container could have changed. */
  close(id: string): Promise<void>;
  /** Removes every gate (after a crash) and revokes every ACL entry. */
  reset(): Promise<void>;
}

export async function createGates(runDir: string, cellKey: string): Promise<Gates> {
  const dir = path.join(runDir, `diego-${cellKey}`);
  const opened = new Map<string, number>(); // container id -> its mapped root uid
  const helper = hostHelper();
  // Creating and removing the (otherwise empty) cell dir must not interleave with a gate's creation.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn);
    chain = next.catch(() => undefined);
    return next;
  };
  const syncAcl = (): Promise<void> => helper.aclSearchOnly(dir, [...new Set([...opened.values()].filter((u) => u !== 0))]);

  const removeGate = async (gate: string): Promise<void> => {
    await unmountIfMounted(path.join(gate, "rootfs"), MNT_DETACH);
    for (const d of [path.join(gate, "rootfs"), gate]) {
      await rmdir(d).catch((err: unknown) => {
        if (!isCode(err, "ENOENT")) throw err;
      });
    }
  };
  const removeDirIfUnused = async (): Promise<void> => {
    if (opened.size > 0) return syncAcl();
    await rmdir(dir).catch(() => undefined); // another cell process never shares this dir
  };

  return {
    dir,
    async open(id, hostRootUid, rootfs) {
      const gate = path.join(dir, id);
      await serial(async () => {
        opened.set(id, hostRootUid);
        // Never chmod it once it exists: its group bits are the ACL's mask, and 0700 would
        // revoke every live container's search right until the next ACL update.
        const created = await mkdir(dir, { mode: 0o700 }).then(
          () => true,
          (err: unknown) => {
            if (!isCode(err, "EEXIST")) throw err;
            return false;
          },
        );
        if (created) await chmod(dir, 0o700);
        await mkdir(gate, { mode: 0o710 });
        await chown(gate, 0, hostRootUid);
        await chmod(gate, 0o710);
        await mkdir(path.join(gate, "rootfs"));
        await syncAcl();
      });
      const target = path.join(gate, "rootfs");
      await helper.cloneMount(rootfs, { path: target }, { attrs: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, recursive: true });
      return target;
    },
    async close(id) {
      if (!opened.has(id)) return;
      await removeGate(path.join(dir, id));
      await serial(async () => {
        opened.delete(id);
        await removeDirIfUnused();
      });
    },
    reset: () =>
      serial(async () => {
        for (const m of await mountPointsUnder(dir)) await unmountIfMounted(m, MNT_DETACH);
        for (const name of await readdir(dir).catch(() => [])) await removeGate(path.join(dir, name));
        opened.clear();
        await removeDirIfUnused();
      }),
  };
}
