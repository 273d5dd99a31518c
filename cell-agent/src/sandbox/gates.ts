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
  /** Detaches and removes a gate; never follows anything a container could have changed. */
  close(id: string, hostRootUid: number): Promise<void>;
  /** Removes every gate (after a crash) and revokes every ACL entry. */
  reset(): Promise<void>;
}

export async function createGates(runDir: string, cellKey: string): Promise<Gates> {
  const dir = path.join(runDir, `diego-${cellKey}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const live = new Map<number, number>(); // mapped root uid -> open gates
  const helper = hostHelper();
  const syncAcl = (): Promise<void> => helper.aclSearchOnly(dir, [...live.keys()]);

  const removeGate = async (gate: string): Promise<void> => {
    await unmountIfMounted(path.join(gate, "rootfs"), MNT_DETACH);
    for (const d of [path.join(gate, "rootfs"), gate]) {
      await rmdir(d).catch((err: unknown) => {
        if (!isCode(err, "ENOENT")) throw err;
      });
    }
  };

  return {
    dir,
    async open(id, hostRootUid, rootfs) {
      const gate = path.join(dir, id);
      await mkdir(gate, { mode: 0o710 });
      await chown(gate, 0, hostRootUid);
      await chmod(gate, 0o710);
      await mkdir(path.join(gate, "rootfs"));
      if (hostRootUid !== 0) {
        live.set(hostRootUid, (live.get(hostRootUid) ?? 0) + 1);
        await syncAcl();
      }
      const target = path.join(gate, "rootfs");
      await helper.cloneMount(rootfs, { path: target }, { attrs: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, recursive: true });
      return target;
    },
    async close(id, hostRootUid) {
      await removeGate(path.join(dir, id));
      const n = live.get(hostRootUid);
      if (hostRootUid === 0 || n === undefined) return;
      if (n > 1) live.set(hostRootUid, n - 1);
      else live.delete(hostRootUid);
      await syncAcl();
    },
    async reset() {
      for (const m of await mountPointsUnder(dir)) await unmountIfMounted(m, MNT_DETACH);
      for (const name of await readdir(dir)) await removeGate(path.join(dir, name));
      live.clear();
      await syncAcl();
    },
  };
}
