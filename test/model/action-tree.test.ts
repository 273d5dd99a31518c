import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ActionSchema, type Action } from "../../src/gen/diego/v1/actions_pb.js";
import { actionDepth, countActions, presentChildren, visitAction, type ActionTable } from "../../src/model/action-tree.js";
import { validateAction } from "../../src/model/validate-task.js";

// The one action-tree walker: nesting comes from the descriptors, per-type work from a table.

const run = (path: string): Action => create(ActionSchema, { action: { case: "run", value: { path } } });
const tree = create(ActionSchema, {
  action: {
    case: "serial",
    value: {
      actions: [
        { action: { case: "download", value: { from: "http://x/a.tgz", to: "/a" } } },
        { action: { case: "timeout", value: { timeout: 1n, action: { action: { case: "try", value: { action: run("/t") } } } } } },
        { action: { case: "parallel", value: { actions: [run("/p1"), run("/p2")] } } },
        { action: { case: "emitProgress", value: { action: { action: { case: "codependent", value: { actions: [run("/c")] } } } } } },
        { action: { case: "upload", value: { from: "/f", to: "http://u/" } } },
      ],
    },
  },
});

describe("the action-tree walker", () => {
  it.each([
    ["an empty action", create(ActionSchema, {}), 0],
    ["a run", run("/x"), 1],
    ["a try without its action", create(ActionSchema, { action: { case: "try", value: {} } }), 1],
    ["the mixed tree", tree, 4],
  ])("measures the depth of %s", (_name, action, depth) => {
    expect(actionDepth(action)).toBe(depth);
  });

  it("counts actions of given types through every kind of nesting", () => {
    expect(countActions(tree, ["run"])).toBe(4);
    expect(countActions(tree, ["run", "download"])).toBe(5);
    expect(countActions(tree, ["upload"])).toBe(1);
    expect(countActions(tree, ["parallel"])).toBe(1);
    expect(countActions(undefined, ["run"])).toBe(0);
  });

  it("finds the nested actions of each type from the descriptors", () => {
    const serial = tree.action.case === "serial" ? tree.action.value : undefined;
    expect(presentChildren(tree)).toHaveLength(5);
    expect(presentChildren(serial!.actions[1]!)).toHaveLength(1);
    expect(presentChildren(serial!.actions[0]!)).toHaveLength(0);
  });

  it("calls the handler of the action's type with its message, or the fallback when empty", () => {
    const names: ActionTable<string, [string]> = {
      run: (v, p) => `${p}run ${v.path}`,
      download: (v, p) => `${p}download ${v.from}`,
      upload: (_v, p) => `${p}upload`,
      timeout: (v, p) => `${p}timeout ${v.timeout}`,
      emitProgress: (_v, p) => `${p}emit`,
      try: (_v, p) => `${p}try`,
      parallel: (v, p) => `${p}parallel of ${v.actions.length}`,
      serial: (v, p) => `${p}serial of ${v.actions.length}`,
      codependent: (_v, p) => `${p}codependent`,
    };
    expect(visitAction(run("/bin/true"), names, () => "none", "> ")).toBe("> run /bin/true");
    expect(visitAction(tree, names, () => "none", "")).toBe("serial of 5");
    expect(visitAction(create(ActionSchema, {}), names, () => "none", "")).toBe("none");
  });

  it("validation checks nested actions alike for every type, before the type's own rules", () => {
    const bad = create(ActionSchema, { action: { case: "timeout", value: { action: { action: { case: "parallel", value: { actions: [] } } } } } });
    expect(validateAction(bad)).toEqual(["Invalid field: actions", "Invalid field: timeout"]);
    expect(validateAction(tree)).toEqual([]);
  });
});
