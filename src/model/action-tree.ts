import type { DescField } from "@bufbuild/protobuf";
import { ActionSchema, type Action } from "../gen/diego/v1/actions_pb.js";

// The one walker of action trees. Which actions nest others, and where, comes from the
// descriptors (every field of an action type whose message is Action), so depth, counting and
// the structural checks of validation need no list of action types. What each type does is a
// table with one entry per type (ActionTable): TypeScript refuses a table that lacks a type, so
// adding an action to actions.proto points at each place that must handle it.

/** The action types, as protobuf-es names the one-of cases ("run", "emitProgress", ...). */
export type ActionCase = NonNullable<Action["action"]["case"]>;

/** The message of one action type, e.g. RunAction for "run". */
export type ActionValue<K extends ActionCase> = Extract<Action["action"], { case: K }>["value"];

/** One handler per action type. */
export type ActionTable<R, A extends unknown[] = []> = { [K in ActionCase]: (value: ActionValue<K>, ...args: A) => R };

/** Where an action type holds nested actions: its singular and its list fields of type Action. */
interface ChildFields {
  one: string[];
  many: string[];
}

const isAction = (f: DescField): boolean => (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) && f.message?.typeName === ActionSchema.typeName;

const childFields = new Map<string, ChildFields>(
  ActionSchema.fields.map((member) => {
    const fields = member.message?.fields.filter(isAction) ?? [];
    return [member.localName, { one: fields.filter((f) => f.fieldKind === "message").map((f) => f.localName), many: fields.filter((f) => f.fieldKind === "list").map((f) => f.localName) }];
  }),
);

/** Calls the handler of the action's type, or `none` when the action is empty. */
export function visitAction<R, A extends unknown[]>(action: Action, table: ActionTable<R, A>, none: () => R, ...args: A): R {
  const a = action.action;
  if (a.case === undefined) return none();
  return (table[a.case] as (value: unknown, ...args: A) => R)(a.value, ...args);
}

/** The nested actions of one action, as they are held: singular (maybe absent) and lists. */
export function actionChildren(action: Action): { single: Array<Action | undefined>; lists: Action[][] } {
  const a = action.action;
  const fields = a.case === undefined ? undefined : childFields.get(a.case);
  if (!fields || a.case === undefined) return { single: [], lists: [] };
  const value = a.value as unknown as Record<string, unknown>;
  return { single: fields.one.map((k) => value[k] as Action | undefined), lists: fields.many.map((k) => value[k] as Action[]) };
}

/** The nested actions of one action that are present, in field order. */
export function presentChildren(action: Action): Action[] {
  const { single, lists } = actionChildren(action);
  return [...single.filter((c): c is Action => c !== undefined), ...lists.flat()];
}

/** Levels of actions: 1 for a single run, 2 for a serial of runs, ... */
export function actionDepth(action: Action | undefined): number {
  if (!action || action.action.case === undefined) return 0;
  return 1 + presentChildren(action).reduce((deepest, child) => Math.max(deepest, actionDepth(child)), 0);
}

/** How many actions of the given types a tree holds (their own children are not counted). */
export function countActions(action: Action | undefined, kinds: ReadonlyArray<ActionCase>): number {
  const kind = action?.action.case;
  if (!action || kind === undefined) return 0;
  if (kinds.includes(kind)) return 1;
  return presentChildren(action).reduce((n, child) => n + countActions(child, kinds), 0);
}
