export {
  createLogStreamer,
  type LogSourceWriter,
  type LogStream,
  type LogStreamer,
  type LogStreamerOptions,
} from "./log-streamer.js";
export { createLineSplitter, utf8Boundary, MAX_MESSAGE_BYTES, type LineSplitter } from "./line-splitter.js";
