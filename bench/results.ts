/**
 * The shape of one bench run: what `docs/bench/results.json` holds and what the table, the
 * budgets and the charts are made from. A part not run (`--quick`) is absent.
 */
import type { Memory } from './child.js';
import type { BrowseMemory, BrowsePoint, HistoryLatency, Soak } from './http-runs.js';
import type { Measured } from './load.js';
import type { Statements } from './statements.js';

export type Machine = {
  cpu: string;
  cores: number;
  memoryGb: number;
  os: string;
  node: string;
  postgres: string;
  /** Embedded (started by the bench) or the one of `BENCH_DATABASE_URL`. */
  database: 'embedded' | 'external';
};

export type Settings = {
  quick: boolean;
  warmupS: number;
  durationS: number;
  clients: number[];
  browseClients: number;
  memoryBrowses: number;
  /** No memory browse is sent after this many seconds. */
  memorySeconds: number;
  soakS?: number;
};

/** Throughput points, one per client count, for turns without and with a tool call. */
export type Series = { plain: Measured[]; tool: Measured[] };

export type Results = {
  date: string;
  machine: Machine;
  settings: Settings;
  statements: Statements;
  throughput?: { ceiling: Series; reference: Series; server: Series };
  historyLatency?: HistoryLatency[];
  browse?: BrowsePoint[];
  memory?: { before: Memory; after: Memory; peakMb: number; browse: BrowseMemory };
  soak?: Soak;
  /** What went wrong in the run itself (failed requests, a part that threw). */
  failures: string[];
};

export type BudgetStatus = 'met' | 'missed' | 'not measured';
/** `part`: what measures it: the statement counts (`--quick`), the full run, or `--soak`. */
export type Budget = { name: string; measured: string; status: BudgetStatus; part: 'statements' | 'run' | 'soak' };
