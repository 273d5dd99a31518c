// Its own module, not part of src/model: the CLI parses flags with it before anything heavy loads.
export { formatDuration, formatGoDuration, InvalidDurationError, parseDuration } from "./go-duration.js";
