/**
 * A run's results as people read them: a plain-text table on stdout, `docs/benchmarks.md` with
 * the same tables, the machine and the method, `docs/bench/results.json`, and two hand-written
 * SVG charts (throughput against clients; turn latency against history length).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { atClients, fixed } from './budgets.js';
import type { Measured } from './load.js';
import type { Budget, Results, Series } from './results.js';

type Table = { title: string; headers: string[]; rows: string[][] };

const SYSTEMS = ['ceiling', 'reference', 'server'] as const;
const KINDS = { plain: 'no tool', tool: 'one tool call' } as const;

/** The tables of `results` and its budgets, in the order they are printed. */
export function tables(results: Results, budgets: Budget[]): Table[] {
  const out: Table[] = [];
  const { statements } = results;
  if (statements.turns.length + statements.browse.length > 0) {
    out.push({
      title: 'SQL statements (exact, in-process app with onQuery)',
      headers: ['request', 'size', 'statements', 'tool calls'],
      rows: [
        ...statements.turns.map((turn) => [
          turn.tool ? 'turn, "show my tasks"' : 'turn, "hello"',
          `${turn.history} messages`,
          turn.statements.join('/'),
          String(turn.toolCalls),
        ]),
        ...statements.browse.map((point) => ['browse', `N=${point.n}`, point.statements.join('/'), '']),
      ],
    });
  }
  const { throughput } = results;
  if (throughput) {
    const rows: string[][] = [];
    for (const kind of ['plain', 'tool'] as const) {
      for (const system of SYSTEMS) {
        for (const point of throughput[system][kind]) {
          const ceiling = atClients(throughput.ceiling, kind, point.clients);
          const reference = atClients(throughput.reference, kind, point.clients);
          rows.push([
            system,
            KINDS[kind],
            String(point.clients),
            fixed(point.perSecond),
            ...latencies(point),
            point.cpuMsPerRequest === undefined ? '' : fixed(point.cpuMsPerRequest, 2),
            fixed(point.benchCpuMsPerRequest, 2),
            share(point, ceiling),
            share(point, reference),
            point.errors > 0 ? String(point.errors) : '',
          ]);
        }
      }
    }
    out.push({
      title: 'Turns: throughput and latency (closed loop, each client on its own conversation)',
      headers: [
        'system',
        'turn',
        'clients',
        'turns/s',
        'p50 ms',
        'p95 ms',
        'p99 ms',
        'CPU ms/turn',
        'bench CPU ms/turn',
        'vs ceiling',
        'vs reference',
        'errors',
      ],
      rows,
    });
  }
  if (results.historyLatency) {
    out.push({
      title: 'Server: turn latency by history length (one client, "hello")',
      headers: ['history', 'turns', 'p50 ms', 'p95 ms', 'p99 ms'],
      rows: results.historyLatency.map((point) => [`${point.history} messages`, String(point.requests), ...latencies(point)]),
    });
  }
  if (results.browse) {
    out.push({
      title: `Server: browse, conversations(first: N) with messageCount, lastMessage, messages(last: 20) and toolCalls (${results.settings.browseClients} clients)`,
      headers: ['N', 'objects', 'requests/s', 'p50 ms', 'p95 ms', 'p99 ms', 'CPU ms/request', 'CPU µs/object', 'errors'],
      rows: results.browse.map((point) => [
        String(point.n),
        String(point.objects),
        fixed(point.perSecond, 1),
        ...latencies(point),
        fixed(point.cpuMsPerRequest ?? Number.NaN, 1),
        fixed(point.cpuUsPerObject, 1),
        point.errors > 0 ? String(point.errors) : '',
      ]),
    });
  }
  if (results.memory) {
    const { before, after, peakMb, browse } = results.memory;
    out.push({
      title: 'Server: resident memory (MB)',
      headers: ['when', 'RSS MB'],
      rows: [
        ['after start', fixed(before.rssMb)],
        ['peak of the run (VmHWM)', fixed(peakMb)],
        [
          `peak during ${browse.requests} browses of 100 conversations (${browse.clients} clients, ${fixed(browse.seconds)} s)`,
          fixed(browse.peakMb),
        ],
        ['at the end', fixed(after.rssMb)],
      ],
    });
  }
  if (results.soak) {
    const { soak } = results;
    const every = Math.max(1, Math.round(soak.rss.length / 20));
    out.push({
      title: `Soak: ${soak.clients} clients for ${soak.seconds} s, ${soak.turns} turns (p50 ${fixed(soak.p50, 1)} ms, p99 ${fixed(soak.p99, 1)} ms, ${soak.errors} errors)`,
      headers: ['seconds', 'RSS MB'],
      rows: soak.rss.filter((_, i) => i % every === 0 || i === soak.rss.length - 1).map(([s, mb]) => [fixed(s), fixed(mb)]),
    });
  }
  out.push({
    title: 'Budgets',
    headers: ['', 'budget', 'measured'],
    rows: budgets.map((b) => [b.status.toUpperCase(), b.name, b.measured]),
  });
  return out;
}

/** `tables` as aligned plain text. */
export function printTables(list: Table[]): string {
  return list
    .map(({ title, headers, rows }) => {
      const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)));
      const line = (cells: string[]) =>
        cells
          .map((cell, i) => (i === 0 || !/^[-–\d.,%/ ]+$/.test(cell) ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
          .join('  ')
          .trimEnd();
      return [title, line(headers), ...rows.map(line)].join('\n');
    })
    .join('\n\n');
}

/** Writes `docs/benchmarks.md`, `docs/bench/results.json` and the charts under `root`. */
export async function writeReport(root: string, results: Results, budgets: Budget[], notes: string[]): Promise<string[]> {
  const dir = path.join(root, 'docs', 'bench');
  await mkdir(dir, { recursive: true });
  const written: Record<string, string> = {
    [path.join(dir, 'results.json')]: `${JSON.stringify({ ...results, budgets }, null, 2)}\n`,
  };
  const charts: string[] = [];
  if (results.throughput) {
    written[path.join(dir, 'throughput.svg')] = throughputChart(results.throughput, results.settings.clients);
    charts.push('![Turns/s against clients](bench/throughput.svg)');
  }
  if (results.historyLatency) {
    written[path.join(dir, 'history-latency.svg')] = lineChart({
      title: 'Server turn latency against history length (one client, no tool)',
      xLabel: 'messages of history',
      yLabel: 'ms',
      categories: results.historyLatency.map((point) => point.history.toLocaleString('en-US')),
      series: (['p50', 'p95', 'p99'] as const).map((p, i) => ({
        name: p,
        color: COLORS[i] ?? 'black',
        dashed: false,
        values: (results.historyLatency ?? []).map((point) => point[p]),
      })),
    });
    charts.push('![Turn latency against history length](bench/history-latency.svg)');
  }
  // What profiles found and what each change bought, written by hand, follows the run's figures.
  const findings = await readFile(path.join(root, 'bench', 'findings.md'), 'utf8').catch(() => '');
  written[path.join(root, 'docs', 'benchmarks.md')] = markdown(results, budgets, notes, charts) + (findings ? `\n${findings}` : '');
  for (const [file, text] of Object.entries(written)) await writeFile(file, text);
  formatWritten(root, Object.keys(written));
  return Object.keys(written);
}

/** `--soak`: writes only `docs/bench/soak.json`, leaving the full run's report as it was. */
export async function writeSoak(root: string, results: Results, budgets: Budget[]): Promise<string[]> {
  const dir = path.join(root, 'docs', 'bench');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'soak.json');
  await writeFile(file, `${JSON.stringify({ ...results, budgets }, null, 2)}\n`);
  formatWritten(root, [file]);
  return [file];
}

// Private: the JSON and Markdown written, in the repository's format (Biome's, which `npm run
// lint` checks), so that committing a run's results never breaks the lint.
function formatWritten(root: string, files: string[]): void {
  const json = files.filter((file) => file.endsWith('.json') || file.endsWith('.md'));
  const biome = path.join(root, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
  execFileSync(process.execPath, [biome, 'format', '--write', ...json], { cwd: root, stdio: 'ignore' });
}

function markdown(results: Results, budgets: Budget[], notes: string[], charts: string[]): string {
  const { machine, settings } = results;
  const cell = (text: string) => text.replaceAll('|', '\\|');
  const body = tables(results, budgets)
    .map(({ title, headers, rows }) =>
      [
        `### ${title}`,
        '',
        `| ${headers.map(cell).join(' | ')} |`,
        `|${headers.map(() => ' --- ').join('|')}|`,
        ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
      ].join('\n'),
    )
    .join('\n\n');
  return `# Benchmarks

Made by \`npm run bench\` (\`bench/bench.ts\`) on ${results.date.slice(0, 10)}; the figures are those of that one run on
that one machine, and move by tens of percent from run to run on a shared machine. Rerun it rather than quote it.

## Machine

- CPU: ${machine.cpu}, ${machine.cores} cores; memory: ${machine.memoryGb.toFixed(0)} GB; ${machine.os}
- Node.js ${machine.node}; PostgreSQL ${machine.postgres} (${machine.database}, on the same machine)
- Run: ${settings.warmupS} s of warm-up and ${settings.durationS} s measured per point; clients ${settings.clients.join(', ')};
  browse with ${settings.browseClients} clients; ${settings.memoryBrowses} browses for the memory peak (none sent after
  ${settings.memorySeconds} s).

## What is measured

- **Ceiling** (\`bench/ceiling.ts\`): the turn's minimal SQL through \`pg\`, one connection per client, from the bench
  process: in one transaction lock the conversation (\`select … for update\`), insert the user message and the reply in
  progress, bump \`next_seq\`, \`message_count\` and the lease; read the last 50 messages by keyset on
  \`(conversation_id, seq)\`; in a second transaction complete the reply and free the conversation. With a tool call,
  the tasks are read and a \`tool_call\` row inserted as well.
- **Reference** (\`bench/reference.ts\`): the same SQL behind a bare \`node:http\` endpoint (JSON in, JSON out, a pool of
  10 connections like the server's), run as a child process. A yardstick, never served.
- **Server**: \`node dist/src/main.js\` as a child process, offline agent, rate limits off, over GraphQL;
  "hello" is answered without a tool call, "show my tasks" with one (\`list_tasks\`). Its CPU time (utime + stime of
  \`/proc/<pid>/stat\`) is read as each measured window opens and closes and divided by the turns answered in it.
- Statement counts come from the app run in the bench process with \`onQuery\`, one request at a time.
- The load generator is a closed loop (each client sends its next request when the previous one answered) over
  keep-alive HTTP, in the bench process. **It shares the cores with the server and PostgreSQL**: "bench CPU ms/turn"
  is its own cost per request (for the ceiling it is the \`pg\` driver's). On ${machine.cores} cores every figure
  here is bounded by the sum of the three.

${charts.join('\n\n')}

${body}
${notes.length > 0 ? `\n## Notes\n\n${notes.map((note) => `- ${note}`).join('\n')}\n` : ''}`;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

function throughputChart(throughput: { ceiling: Series; reference: Series; server: Series }, clients: number[]): string {
  return lineChart({
    title: 'Turns/s against clients (solid: no tool; dashed: one tool call)',
    xLabel: 'clients',
    yLabel: 'turns/s',
    categories: clients.map(String),
    series: SYSTEMS.flatMap((system, i) =>
      (['plain', 'tool'] as const).map((kind) => ({
        name: `${system}, ${KINDS[kind]}`,
        color: COLORS[i] ?? 'black',
        dashed: kind === 'tool',
        values: clients.map((n) => atClients(throughput[system], kind, n)?.perSecond ?? Number.NaN),
      })),
    ),
  });
}

type Chart = {
  title: string;
  xLabel: string;
  yLabel: string;
  categories: string[];
  series: { name: string; color: string; dashed: boolean; values: number[] }[];
};

/** A line chart over evenly spaced categories, y from 0, as a small standalone SVG. */
export function lineChart({ title, xLabel, yLabel, categories, series }: Chart): string {
  const width = 720;
  const height = 400;
  const left = 70;
  const right = 230;
  const top = 40;
  const bottom = 60;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter(Number.isFinite)));
  const step = niceStep(max / 5);
  const yMax = Math.ceil(max / step) * step;
  const x = (i: number) => left + (categories.length === 1 ? plotW / 2 : (i * plotW) / (categories.length - 1));
  const y = (value: number) => top + plotH - (value / yMax) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${xml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="14">${xml(title)}</text>`,
  ];
  for (let value = 0; value <= yMax + step / 2; value += step) {
    out.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(value).toFixed(1)}" y2="${y(value).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${(y(value) + 4).toFixed(1)}" text-anchor="end">${formatTick(value)}</text>`);
  }
  categories.forEach((category, i) => {
    out.push(`<text x="${x(i).toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle">${xml(category)}</text>`);
  });
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  out.push(`<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`);
  out.push(`<text x="${left + plotW / 2}" y="${height - 16}" text-anchor="middle">${xml(xLabel)}</text>`);
  out.push(`<text x="18" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 18 ${top + plotH / 2})">${xml(yLabel)}</text>`);
  series.forEach((s, n) => {
    const points = s.values.flatMap((value, i) => (Number.isFinite(value) ? [[x(i), y(value)] as const] : []));
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' ')}"/>`,
    );
    for (const [px, py] of points) out.push(`<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = top + 10 + n * 20;
    out.push(
      `<line x1="${width - right + 20}" x2="${width - right + 50}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`,
    );
    out.push(`<text x="${width - right + 56}" y="${ly + 4}">${xml(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function latencies(point: { p50: number; p95: number; p99: number }): string[] {
  return [fixed(point.p50, 1), fixed(point.p95, 1), fixed(point.p99, 1)];
}

function share(point: Measured, base: Measured | undefined): string {
  return base ? `${fixed((point.perSecond / base.perSecond) * 100)}%` : '';
}

// Private: 1, 2 or 5 times a power of ten, at least `raw`.
function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
}

function formatTick(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function xml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
