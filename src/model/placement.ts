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
}

/** What placing a task needs. */
export interface PlacementRequest {
  taskGuid: string;
  stack: string;
  rootFs: string;
  memoryMb: number;
  diskMb: number;
}
