export {
  createLogStreamer,
  type LogSourceWriter,
  type LogStream,
  type LogStreamer,
  type LogStreamerOptions,
} from "./log-streamer.js";
export { createLineSplitter, MAX_MESSAGE_BYTES, type LineSplitter } from "./line-splitter.js";
