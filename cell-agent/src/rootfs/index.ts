export { ensureBusyboxRootfs } from "./busybox-rootfs.js";
