import { formatElapsed } from "./format.js";

// Progress for `diego task run`: an animated line on a terminal, nothing through a pipe or a file
// (a log would fill with carriage returns).

export interface Progress {
  update(text: string): void;
  stop(): void;
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export function startProgress(stream: NodeJS.WriteStream, startedAt: number, text: string): Progress {
  if (!stream.isTTY) return { update() {}, stop() {} };
  let frame = 0;
  let current = text;
  let stopped = false;
  const draw = (): void => {
    const line = `${FRAMES[frame++ % FRAMES.length]} ${current}  ${formatElapsed(Date.now() - startedAt)}`;
    // Cut to the terminal's width, so that the line never wraps and \r stays on it.
    stream.write(`\r\x1b[2K${line.slice(0, Math.max(10, (stream.columns || 80) - 1))}`);
  };
  draw();
  const timer = setInterval(draw, 100);
  return {
    update(next) {
      current = next;
      if (!stopped) draw();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      stream.write("\r\x1b[2K");
    },
  };
}
