#!/usr/bin/env node
// Benchmark (by hand, not in CI): how fast pgmam starts. `pgmam --version` against `node -e 0`, the
// standalone executable (dist/pgmam) where it was built, else bin/pgmam; alternately, so both see the
// same machine; medians of R rounds. Goal: at most 1.3x.
// Usage: node bench/startup.mjs [rounds=40] [pgmam executable]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const rounds = Number(process.argv[2] ?? 40);
const standalone = resolve(import.meta.dirname, '../dist/pgmam');
const exe = resolve(process.argv[3] ?? (existsSync(standalone) ? standalone : resolve(import.meta.dirname, '../bin/pgmam')));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const time = (cmd, args) => { const t = performance.now(); execFileSync(cmd, args, { stdio: 'ignore' }); return (performance.now() - t) / 1000; };

const node = [], pgmam = [];
for (let i = 0; i < 3; i++) { time(process.execPath, ['-e', '0']); time(exe, ['--version']); } // warm the page cache
for (let i = 0; i < rounds; i++) {
  node.push(time(process.execPath, ['-e', '0']));
  pgmam.push(time(exe, ['--version']));
}
const n = median(node), p = median(pgmam);
console.log(`| measure (median of ${rounds}) | seconds |`);
console.log('| --- | --- |');
console.log(`| node -e 0 | ${n.toFixed(3)} |`);
console.log(`| ${exe.replace(resolve(import.meta.dirname, '..') + '/', '')} --version | ${p.toFixed(3)} |`);
console.log(`ratio ${(p / n).toFixed(2)}x (goal <= 1.3x)`);
