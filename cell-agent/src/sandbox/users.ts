import { UnknownUserError } from "./errors.js";
import type { OciUser } from "./oci-config.js";
import { readSmallFileInRootfs } from "./safe-path.js";

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

/**
 * Resolves a user name or numeric uid against the container's /etc/passwd (read on the host
 * through rootfsPath). A number not in passwd runs with gid 0, as Docker does.
 * Supplementary groups come from /etc/group.
 */
export async function resolveUser(rootfsPath: string, user: string | undefined): Promise<OciUser> {
  const wanted = (user ?? "").trim();
  if (wanted === "" || wanted === "root" || wanted === "0") return { uid: 0, gid: 0 };
  const entries = parsePasswd(await readEtc(rootfsPath, "passwd"));
  const numeric = /^\d+$/.test(wanted) ? Number(wanted) : undefined;
  const entry = entries.find((e) => (numeric === undefined ? e.name === wanted : e.uid === numeric));
  if (!entry) {
    if (numeric !== undefined) return { uid: numeric, gid: 0 };
    throw new UnknownUserError(wanted);
  }
  const groups = supplementaryGroups(await readEtc(rootfsPath, "group"), entry.name, entry.gid);
  return groups.length > 0 ? { uid: entry.uid, gid: entry.gid, additionalGids: groups } : { uid: entry.uid, gid: entry.gid };
}

function readEtc(rootfsPath: string, name: string): Promise<string> {
  // Never follows the image's symlinks out of the rootfs, never blocks on a FIFO.
  return readSmallFileInRootfs(rootfsPath, `/etc/${name}`);
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || !/^\d+$/.test(f[2] ?? "") || !/^\d+$/.test(f[3] ?? "")) continue;
    out.push({ name: f[0] ?? "", uid: Number(f[2]), gid: Number(f[3]) });
  }
  return out;
}

function supplementaryGroups(text: string, user: string, primary: number): number[] {
  const gids: number[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4 || !/^\d+$/.test(f[2] ?? "")) continue;
    const gid = Number(f[2]);
    if (gid !== primary && (f[3] ?? "").split(",").includes(user)) gids.push(gid);
  }
  return gids;
}
