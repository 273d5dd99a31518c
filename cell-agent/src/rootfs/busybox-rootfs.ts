import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, chmod, chown, copyFile, mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * The cell's default preloaded root filesystem, built from Debian's busybox-static:
 *   /bin/busybox            the static binary (copied from the host)
 *   /bin/<applet>           a relative symlink to busybox for every applet `busybox --list` names
 *                           (sh, echo, cat, sleep, true, dd, head, seq, ps, ip, ...), unless taken
 *   /usr/bin, /sbin, ...    empty standard directories (PATH entries)
 *   /etc/passwd, /etc/group root (0), vcap (2000, home /home/vcap), nobody (65534)
 *   /etc/hosts              localhost on 127.0.0.1 and ::1
 *   /etc/nsswitch.conf      files only
 *   /tmp                    mode 1777
 *   /home/vcap              owned by vcap
 *   /proc /sys /dev         empty mount points
 * Built in a temporary sibling directory and renamed into place, so it is idempotent and safe
 * under concurrent callers (the loser of the rename race discards its copy).
 */
export async function ensureBusyboxRootfs(dir: string, busybox = "/bin/busybox"): Promise<string> {
  const target = path.resolve(dir);
  if (await isComplete(target)) return target;
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await build(tmp, busybox);
    await mkdir(path.dirname(target), { recursive: true });
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (await isComplete(target)) return target;
    throw err;
  }
  return target;
}

async function isComplete(target: string): Promise<boolean> {
  try {
    await access(path.join(target, "etc", "passwd"));
    await access(path.join(target, "bin", "busybox"));
    return true;
  } catch {
    return false;
  }
}

const DIRS = ["bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "etc", "proc", "sys", "dev", "root", "var", "home/vcap"];

const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "vcap:x:2000:2000:vcap:/home/vcap:/bin/sh",
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
  "",
].join("\n");
const GROUP = ["root:x:0:", "vcap:x:2000:", "nogroup:x:65534:", ""].join("\n");
const HOSTS = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback", ""].join("\n");

async function build(root: string, busybox: string): Promise<void> {
  await mkdir(root, { mode: 0o755 });
  await Promise.all(DIRS.map((d) => mkdir(path.join(root, d), { recursive: true, mode: 0o755 })));
  await mkdir(path.join(root, "tmp"));
  await chmod(path.join(root, "tmp"), 0o1777);
  await chmod(path.join(root, "root"), 0o700);
  await copyFile(busybox, path.join(root, "bin", "busybox"));
  await chmod(path.join(root, "bin", "busybox"), 0o755);
  const { stdout } = await run(busybox, ["--list"]);
  const applets = stdout.split("\n").map((a) => a.trim()).filter((a) => a && a !== "busybox" && !a.includes("/"));
  await Promise.all(applets.map((a) => symlink("busybox", path.join(root, "bin", a))));
  await Promise.all([
    writeFile(path.join(root, "etc", "passwd"), PASSWD),
    writeFile(path.join(root, "etc", "group"), GROUP),
    writeFile(path.join(root, "etc", "hosts"), HOSTS),
    writeFile(path.join(root, "etc", "nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files\n"),
  ]);
  await chown(path.join(root, "home", "vcap"), 2000, 2000);
}
