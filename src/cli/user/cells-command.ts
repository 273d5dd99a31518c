import { noPositionals, writeLine, type UserCommand } from "./context.js";
import { cellTable, type CellView } from "./format.js";

export const cells: UserCommand = {
  synopsis: "diego cells",
  help: "Lists the live cells as a table: zone, stacks, tasks, and free/total containers, memory and disk. --json prints the API's array.",
  options: {},
  async run(ctx) {
    noPositionals(ctx, "cells");
    const body = await ctx.client.request("GET", "/v1/cells");
    if (ctx.json) {
      writeLine(ctx.stdout, body);
      return 0;
    }
    const list = JSON.parse(body) as CellView[];
    writeLine(ctx.stdout, list.length === 0 ? "No cells." : cellTable(list));
    return 0;
  },
};
