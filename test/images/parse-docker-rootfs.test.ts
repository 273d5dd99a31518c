import { describe, expect, it } from "vitest";
import { ImagePullError, parseDockerRootfs } from "../../cell-agent/src/images/index.js";

const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("parseDockerRootfs", () => {
  it.each([
    ["docker:///org/image#tag", { registry: undefined, repository: "org/image", reference: "tag" }],
    ["docker:///org/image", { registry: undefined, repository: "org/image", reference: "latest" }],
    ["docker:///busybox", { registry: undefined, repository: "library/busybox", reference: "latest" }],
    ["docker:///docker.com/docker", { registry: undefined, repository: "docker.com/docker", reference: "latest" }],
    ["docker://127.0.0.1:5000/org/image#v1.2", { registry: "127.0.0.1:5000", repository: "org/image", reference: "v1.2" }],
    ["docker://index.myregistry.gov/org/img#tag", { registry: "index.myregistry.gov", repository: "org/img", reference: "tag" }],
    ["docker://localhost:5000/solo", { registry: "localhost:5000", repository: "solo", reference: "latest" }],
    ["docker://reg:5000/a/b/c_d-e.f", { registry: "reg:5000", repository: "a/b/c_d-e.f", reference: "latest" }],
    [`docker:///org/image#${DIGEST}`, { registry: undefined, repository: "org/image", reference: DIGEST }],
  ])("parses %s", (url, expected) => {
    expect(parseDockerRootfs(url)).toEqual(expected);
  });

  it.each([
    ["preloaded:cflinuxfs2", "must start with docker://"],
    ["docker:/org/image", "must start with docker://"],
    ["docker://", "missing image path"],
    ["docker:///", "missing image name"],
    ["docker:///Org/Image", 'bad repository "Org/Image"'],
    ["docker:///org//image", "bad repository"],
    ["docker:///org/image#", "empty tag"],
    ["docker:///org/image#bad tag", 'bad tag "bad tag"'],
    ["docker:///org/image#-bad", 'bad tag "-bad"'],
    ["docker:///org/image#sha256:short", "bad digest"],
    ["docker:///org/image?x=1", "query strings"],
    ["docker://bad_host:5000/org/image", 'bad registry host "bad_host:5000"'],
  ])("rejects %s with a clear reason", (url, why) => {
    let caught: unknown;
    try {
      parseDockerRootfs(url);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ImagePullError);
    expect((caught as ImagePullError).kind).toBe("invalid-reference");
    expect((caught as ImagePullError).reason).toContain(why);
    expect((caught as ImagePullError).reason).toContain(url);
  });
});
