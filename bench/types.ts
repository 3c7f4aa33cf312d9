// One measured figure in the benchmark table.
export interface BenchRow {
  /** Section of the table, e.g. 'unprefix', 'relay', 'encode'. */
  group: string
  /** What was measured, e.g. '1 MB frames, 64 KiB chunks'. */
  name: string
  value: number
  unit: string
  /** Free text shown in the last column, e.g. a ratio to a baseline measured in the same run. */
  note?: string
}

export type Bench = () => Promise<BenchRow[]>
