import { chmod, copyFile, mkdtemp, rm } from "node:fs/promises";
import path from "node:path";

// A private directory at the top of the container's root, holding a static busybox and the
// archive to unpack. mkdtemp creates a fresh directory (it cannot follow a planted symlink),
// directly in rootfsPath (no container-controlled component on the way), owned by host root:
// a user-namespaced container can read it but not change it.

export interface ContainerStage {
  /** Host path of the stage directory. */
  readonly hostDir: string;
  /** The same directory as the container sees it ("/.diego-download-XXXXXX"). */
  readonly containerDir: string;
  remove(): Promise<void>;
}

export async function createContainerStage(rootfsPath: string, busyboxPath: string): Promise<ContainerStage> {
  const hostDir = await mkdtemp(path.join(rootfsPath, ".diego-download-"));
  const stage = {
    hostDir,
    containerDir: `/${path.basename(hostDir)}`,
    remove: () => rm(hostDir, { recursive: true, force: true }),
  };
  try {
    await chmod(hostDir, 0o755);
    const busybox = path.join(hostDir, "busybox");
    await copyFile(busyboxPath, busybox);
    await chmod(busybox, 0o755);
    return stage;
  } catch (err) {
    await stage.remove();
    throw err;
  }
}
