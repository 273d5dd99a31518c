// What a cell offers and what a task asks for: the auction places tasks by these, and a cell
// keeps its ledger of room in the same terms.

export interface Room {
  memoryMb: number;
  diskMb: number;
  containers: number;
}

/** A cell's bid in an auction. */
export interface CellBid {
  cellId: string;
  stacks: string[];
  /** Root filesystem schemes accepted besides preloaded stacks (e.g. "docker"). */
  rootfsSchemes: string[];
  total: Room;
  available: Room;
  taskCount: number;
  /** The cell's availability zone (LRP instances are spread across zones). */
  zone?: string;
  /** A draining cell: it takes no new work. */
  evacuating?: boolean;
  /** process_guid -> instances of that LRP on the cell. */
  lrpInstances?: Record<string, number>;
}

/** What placing a task needs. */
export interface PlacementRequest {
  taskGuid: string;
  stack: string;
  rootFs: string;
  memoryMb: number;
  diskMb: number;
}

/** What placing one LRP instance (an UNCLAIMED ActualLRP) needs. */
export interface LrpPlacementRequest {
  processGuid: string;
  index: number;
  /** `preloaded:<stack>` or `docker://...`. */
  rootFs: string;
  memoryMb: number;
  diskMb: number;
}
