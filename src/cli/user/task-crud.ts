import { noPositionals, onePositional, writeLine, type UserCommand } from "./context.js";
import { taskDetails, taskTable, type TaskView } from "./format.js";
import { readTaskFile } from "./task-file.js";

// create, get, list, cancel and delete: one request each.

export const taskPath = (guid: string): string => `/v1/tasks/${encodeURIComponent(guid)}`;

export const create: UserCommand = {
  synopsis: "diego task create -f FILE|-",
  help: "Creates a task from a TaskCreateRequest in JSON (docs/api.md), read from FILE or, with -f -, from stdin.",
  options: { file: { type: "string", short: "f" } },
  flagHelp: [["-f, --file FILE", "the task as JSON; - reads stdin"]],
  async run(ctx) {
    noPositionals(ctx, "task create");
    const task = await readTaskFile(ctx.values.file, ctx.stdin, "task create");
    await ctx.client.request("POST", "/v1/tasks", task.body);
    writeLine(ctx.stdout, ctx.json ? JSON.stringify({ task_guid: task.guid, created: true }) : `created task ${task.guid}`);
    return 0;
  },
};

export const get: UserCommand = {
  synopsis: "diego task get GUID",
  help: "Shows one task: state, cell, outcome, age, result and what it runs. --json prints the API's TaskResponse.",
  options: {},
  async run(ctx) {
    const guid = onePositional(ctx, "GUID", "task get");
    const body = await ctx.client.request("GET", taskPath(guid));
    writeLine(ctx.stdout, ctx.json ? body : taskDetails(JSON.parse(body) as TaskView, Date.now()));
    return 0;
  },
};

export const list: UserCommand = {
  synopsis: "diego task list [--domain D]",
  help: "Lists tasks, oldest first, as a table: guid, domain, state, cell, outcome (failure reasons shortened) and age. --json prints the API's array.",
  options: { domain: { type: "string" } },
  flagHelp: [["--domain D", "only the tasks of domain D"]],
  async run(ctx) {
    noPositionals(ctx, "task list");
    const domain = ctx.values.domain as string | undefined;
    const body = await ctx.client.request("GET", domain ? `/v1/tasks?domain=${encodeURIComponent(domain)}` : "/v1/tasks");
    if (ctx.json) {
      writeLine(ctx.stdout, body);
      return 0;
    }
    const tasks = JSON.parse(body) as TaskView[];
    writeLine(ctx.stdout, tasks.length === 0 ? (domain ? `No tasks in domain ${domain}.` : "No tasks.") : taskTable(tasks, Date.now()));
    return 0;
  },
};

export const cancel: UserCommand = {
  synopsis: "diego task cancel GUID",
  help: "Cancels a PENDING, CLAIMED or RUNNING task: it completes as failed with 'task was cancelled', and a running container is killed.",
  options: {},
  async run(ctx) {
    const guid = onePositional(ctx, "GUID", "task cancel");
    await ctx.client.request("POST", `${taskPath(guid)}/cancel`);
    writeLine(ctx.stdout, ctx.json ? JSON.stringify({ task_guid: guid, cancelled: true }) : `cancelled task ${guid}`);
    return 0;
  },
};

export const del: UserCommand = {
  synopsis: "diego task delete GUID",
  help: "Deletes (resolves) a COMPLETED task; it is removed.",
  options: {},
  async run(ctx) {
    const guid = onePositional(ctx, "GUID", "task delete");
    await ctx.client.request("DELETE", taskPath(guid));
    writeLine(ctx.stdout, ctx.json ? JSON.stringify({ task_guid: guid, deleted: true }) : `deleted task ${guid}`);
    return 0;
  },
};
